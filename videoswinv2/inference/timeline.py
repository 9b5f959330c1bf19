"""What ``videoswinv2 timeline`` writes, for ``--output tl.csv`` (``.jsonl`` alike): a row per
window as windows finish (``tl.csv``), each video's merged segments once all its windows are in
(``tl.segments.csv``) and a PNG of its class probabilities over time (``tl_plots/<the video's
path mirrored>.png``). A re-run skips videos with segments and a picture and keeps the finished
windows of the others.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
from tqdm.auto import tqdm

from videoswinv2.data.timeline import TimelineSpec, TimelineTask
from videoswinv2.files import replaced_atomically
from videoswinv2.inference.inputs import mirrored_path
from videoswinv2.inference.outputs import RowFile, check_row_file, claim, is_jsonl, resolved
from videoswinv2.inference.writers import ResultWriter
from videoswinv2.training.evaluation import FAILED, OK, Result, RowSchema, row_predicted, row_top

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SEGMENT_COLUMNS = ["video", "status", "reason", "start_s", "end_s", "label", "windows", "mean_prob"]


@dataclass(frozen=True)
class Window:
    """A finished window: where it lies, its top-k ``(label, probability)`` and, for a
    multi-label model, its classes over the threshold."""

    index: int
    start_s: float
    end_s: float
    top: tuple[tuple[str, float], ...]
    predicted: tuple[tuple[str, float], ...] = ()

    @property
    def centre(self) -> float:
        return (self.start_s + self.end_s) / 2

    def probability(self, label: str) -> float:
        """The probability of ``label`` here, NaN where the row does not hold it (below the top-k
        and the threshold)."""
        return dict(self.top).get(label, dict(self.predicted).get(label, float("nan")))


@dataclass(frozen=True)
class Segment:
    """Consecutive windows with one label: ``[start_s, end_s)``, how many windows it holds and
    the mean probability of ``label`` in those of them that have it (as top-1, or over the
    threshold)."""

    start_s: float
    end_s: float
    label: str
    windows: int
    mean_prob: float


def merge_segments(
    windows: Sequence[Window], min_seconds: float = 0.0, per_class: bool = False
) -> list[Segment]:
    """Segments of windows sorted by start: runs of one top-1 label, meeting half-way between the
    centres of the windows on either side (the first starts with its first window, the last ends
    with its last). While a segment is shorter than ``min_seconds`` (and there are two or more),
    the shortest joins its longer neighbour (the earlier on a tie) and neighbours of one label merge.

    ``per_class`` (a multi-label model): each class over the threshold somewhere has segments of
    its own, its runs of windows over the threshold, merged the same way against its runs under it
    (a short gap closes, a short run goes); several classes' segments may overlap. Sorted by
    start, then label.
    """
    if not per_class:
        return _runs(windows, [w.top[0] for w in windows], min_seconds)
    segments: list[Segment] = []
    for label in dict.fromkeys(label for w in windows for label, _ in w.predicted):
        over = [dict(w.predicted).get(label) for w in windows]
        segments += _runs(windows, [None if p is None else (label, p) for p in over], min_seconds)
    return sorted(segments, key=lambda s: (s.start_s, s.label))


def _runs(
    windows: Sequence[Window], marks: Sequence[tuple[str, float] | None], min_seconds: float
) -> list[Segment]:
    """The segments of :func:`merge_segments` for each window's ``(label, probability)`` mark; runs
    of windows without one (None) take part in the merging but make no segment."""
    if not windows:
        return []
    runs = _joined([[mark and mark[0], k, k] for k, mark in enumerate(marks)])  # [label, first, last]

    def bounds(run: list[Any]) -> tuple[float, float]:
        first, last = run[1], run[2]
        start = windows[0].start_s if first == 0 else (windows[first - 1].centre + windows[first].centre) / 2
        end = (
            windows[-1].end_s
            if last == len(windows) - 1
            else (windows[last].centre + windows[last + 1].centre) / 2
        )
        return start, end

    def length(run: list[Any]) -> float:
        start, end = bounds(run)
        return end - start

    while len(runs) > 1 and min(map(length, runs)) < min_seconds:
        k = min(range(len(runs)), key=lambda j: (length(runs[j]), j))
        neighbours = [j for j in (k - 1, k + 1) if 0 <= j < len(runs)]
        into = max(neighbours, key=lambda j: (length(runs[j]), -j))
        runs[into][1], runs[into][2] = min(runs[into][1], runs[k][1]), max(runs[into][2], runs[k][2])
        del runs[k]
        runs = _joined(runs)
    segments = []
    for label, first, last in runs:
        if label is None:
            continue
        own = [mark[1] for mark in marks[first : last + 1] if mark and mark[0] == label]
        start, end = bounds([label, first, last])
        segments.append(Segment(start, end, label, last - first + 1, sum(own) / len(own)))
    return segments


def _joined(runs: list[list[Any]]) -> list[list[Any]]:
    """Neighbouring ``[label, first, last]`` runs of one label as one."""
    joined: list[list[Any]] = []
    for run in runs:
        if joined and joined[-1][0] == run[0]:
            joined[-1][2] = run[2]
        else:
            joined.append(run)
    return joined


# Lines drawn per picture: the classes that are top-1 (multi-label: over the threshold) in the most windows.
_CLASSES_DRAWN = 5


def timeline_figure(
    video: str, windows: Sequence[Window], segments: Sequence[Segment], threshold: float | None = None
) -> Figure:
    """Probabilities of the most frequent top-1 classes over time (window centres; a class below a
    window's top-k is not drawn there), with the segments as a coloured band underneath. For a
    multi-label model (``threshold`` given): the classes over the threshold in the most windows
    (else the most frequent top-1), the threshold as a dashed line, and a lane of segments per
    class drawn."""
    from matplotlib.figure import Figure

    over = Counter(label for w in windows for label, _ in w.predicted)
    counts = over if threshold is not None and over else Counter(w.top[0][0] for w in windows)
    drawn = [label for label, _ in counts.most_common(_CLASSES_DRAWN)]
    colours = {label: f"C{k}" for k, label in enumerate(drawn)}
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax, band = fig.subplots(2, 1, sharex=True, height_ratios=[5, 1])
    times = [w.centre for w in windows]
    for label in drawn:
        probs = [w.probability(label) for w in windows]
        marker = "." if len(windows) < 60 else None
        ax.plot(times, probs, color=colours[label], label=label, linewidth=1.5, marker=marker)
    if threshold is not None:
        ax.axhline(threshold, color="0.4", linestyle="--", linewidth=0.8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    end = max(w.end_s for w in windows)
    ax.set_title(f"{Path(video).name}: {len(windows)} windows over {end:.1f} s", fontsize=10)
    if threshold is None:
        for segment in segments:
            band.axvspan(
                segment.start_s, segment.end_s, color=colours.get(segment.label, "0.75"), linewidth=0
            )
    else:
        lanes = {label: len(drawn) - 1 - k for k, label in enumerate(drawn)}  # the first drawn on top
        for segment in (s for s in segments if s.label in lanes):
            extent = [(segment.start_s, segment.end_s - segment.start_s)]
            band.broken_barh(extent, (lanes[segment.label] + 0.1, 0.8), color=colours[segment.label])
        band.set_ylim(0, max(len(drawn), 1))
    band.set_yticks([])
    lanes_name = "top-1" if threshold is None else f">= {threshold:g}"
    band.set_ylabel(lanes_name, rotation=0, ha="right", va="center", fontsize=8)
    band.set_xlim(0, end)
    band.set_xlabel("time (s)")
    return fig


def estimated_windows(video: str, spec: TimelineSpec) -> int | None:
    """Windows a video will give, from its container's duration (None when it says nothing)."""
    import av

    try:
        with av.open(video) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 0)
            seconds = (
                float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
            )
    except Exception:  # noqa: BLE001  (only a progress-bar estimate)
        return None
    if not rate or not seconds:
        return None
    span = spec.clip.offsets(rate)[-1] / rate
    return max(int((seconds - span) / spec.stride_s) + 2, 1)


class TimelineWriter(ResultWriter):
    """Window rows, segments and pictures of ``videoswinv2 timeline`` (see the module docstring);
    with ``output`` None, each video's segments are printed when it is done.

    Args:
        output: the windows' ``.csv`` or ``.jsonl`` file (segments and pictures go beside it).
        topk: classes per window row.
        classes: class names of the model.
        min_segment_s: shorter segments join a neighbour (:func:`merge_segments`).
        threshold: a multi-label model's: rows name the classes whose probability reaches it, and
            segments are per class (None: single-label, segments of the top-1).
        progress: show a progress bar over windows.
    """

    tool = "videoswinv2 timeline"
    unit = "window"

    def __init__(
        self,
        output: str | None,
        topk: int,
        classes: Sequence[str],
        spec: TimelineSpec,
        min_segment_s: float = 0.0,
        threshold: float | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(progress)
        check_row_file(output)
        self.schema = RowSchema(topk, windows=True, threshold=threshold)
        self.classes, self.spec, self.min_segment_s = list(classes), spec, min_segment_s
        self.file = self.segments = self.plots = None
        if output is not None:
            path = Path(output)
            suffix = ".jsonl" if is_jsonl(path) else ".csv"
            self.file = RowFile(path, self.schema.columns())
            self.segments = RowFile(path.with_name(f"{path.stem}.segments{suffix}"), SEGMENT_COLUMNS)
            self.plots = path.with_name(f"{path.stem}_plots")
        self._windows: dict[str, list[Window]] = defaultdict(list)
        self._parts: dict[str, set[int]] = defaultdict(set)
        self._failed_videos: set[str] = set()

    def plot_file(self, video: str) -> Path | None:
        return None if self.plots is None else self.plots / mirrored_path(video, ".png")

    def row_files(self) -> list[RowFile]:
        return [f for f in (self.file, self.segments) if f is not None]

    def _prepare(
        self, settings: dict[str, Any], overwrite: bool, writes: bool
    ) -> tuple[set[str], dict[str, frozenset[int]]]:
        """Videos done (segments written and the picture there), and the windows done of others."""
        if self.file is None:
            return set(), {}
        if writes:
            also = [self.segments.path, self.plots]
            if not claim(self.file.path, self.tool, settings, overwrite=overwrite, also=also):
                self.file.reset()
                self.segments.reset()
                return set(), {}
        done_video = lambda row: row["status"] == OK and self.plot_file(row["video"]).is_file()  # noqa: E731
        segments = self.segments.keep(done_video) if writes else self.segments.rows(done_video)
        finished = {resolved(row["video"]) for row in segments}
        ok = lambda row: row["status"] == OK  # noqa: E731
        windows = self.file.keep(ok) if writes else self.file.rows(ok)
        skip: dict[str, set[int]] = defaultdict(set)
        for row in windows:
            key = resolved(row["video"])
            if key not in finished:
                self._windows[key].append(_window(row))
                skip[key].add(int(row["window"]))
        return finished, {key: frozenset(done) for key, done in skip.items()}

    def lightning_settings(self, trainer: pl.Trainer) -> dict[str, Any]:
        raise NotImplementedError("timelines run from `videoswinv2 timeline`, which prepares the writer")

    def bar_total(self, trainer: pl.Trainer) -> int | None:
        tasks = getattr(trainer.predict_dataloaders.dataset, "tasks", [])
        todo = [
            (task.video, len(task.skip))
            for task in tasks
            if isinstance(task, TimelineTask) and task.part == 0
        ]
        estimates = [estimated_windows(video, self.spec) for video, _ in todo]
        return None if None in estimates else sum(e - skipped for e, (_, skipped) in zip(estimates, todo))

    def count(self, results: list[Result]) -> int:
        return sum(r.ok for r in results)

    def write(self, results: list[Result], finished: list[Any]) -> None:
        rows = []
        jsonl = self.file is not None and is_jsonl(self.file.path)
        for result in results:
            item, key = result.item, resolved(result.item.video)  # internal state: by resolved path
            if result.ok:
                rows.append(self.schema.row(result, self.classes, jsonl))
                threshold = self.schema.threshold
                top = tuple((self.classes[c], p) for c, p in result.top(self.schema.topk))
                over = result.above(threshold) if threshold is not None else []
                over = tuple((self.classes[c], p) for c, p in over)
                self._windows[key].append(Window(*item.window, top, over))
            elif key not in self._failed_videos:  # one row per video, however many parts failed
                self._failed_videos.add(key)
                self._windows.pop(key, None)
                rows.append(self.schema.row(result, self.classes, jsonl))
                self._write_segments(item.video, [], result.reason)
        if self.file is not None:
            self.file.write(rows)
        for task in finished:
            key = resolved(task.video)
            self._parts[key].add(task.part)
            if len(self._parts[key]) == task.parts and key not in self._failed_videos:
                self._finish(task.video)

    def _finish(self, video: str) -> None:
        windows = sorted(self._windows.pop(resolved(video), []), key=lambda w: w.index)
        threshold = self.schema.threshold
        segments = merge_segments(windows, self.min_segment_s, per_class=threshold is not None)
        self._write_segments(video, segments)
        target = self.plot_file(video)
        if target is not None and windows:
            target.parent.mkdir(parents=True, exist_ok=True)
            with replaced_atomically(target) as file:
                timeline_figure(video, windows, segments, threshold).savefig(file, format="png", dpi=100)

    def _write_segments(self, video: str, segments: list[Segment], reason: str = "") -> None:
        if self.segments is None:
            lines = [video] + [
                f"  {s.start_s:8.2f} - {s.end_s:8.2f} s  {s.label}  ({s.mean_prob:.2f})" for s in segments
            ]
            tqdm.write("\n".join(lines + ([f"  failed: {reason}"] if reason else [])), file=sys.stdout)
            return
        if reason:
            self.segments.write([{"video": video, "status": FAILED, "reason": reason}])
            return
        jsonl = is_jsonl(self.segments.path)
        rows = [{"video": video, "status": OK, "reason": "", **asdict(s)} for s in segments]
        for row in rows:
            for key in ("start_s", "end_s", "mean_prob"):
                row[key] = round(row[key], 3) if jsonl else f"{row[key]:.3f}"
        self.segments.write(rows)


def _window(row: dict[str, Any]) -> Window:
    return Window(
        int(row["window"]),
        float(row["start_s"]),
        float(row["end_s"]),
        tuple(row_top(row)),
        tuple(row_predicted(row)),
    )
