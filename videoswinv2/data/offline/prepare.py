"""Re-encode a video dataset for training: small, upright, silent H.264 with frequent keyframes.

Random clips decode from the keyframe before their first frame, so a YouTube video (a keyframe
every 250 frames, B-frames, 720p) costs several times what it costs at short side 256 with a
keyframe every 32 frames (``scripts/benchmark_data.py``). :func:`prepare_dataset` writes such a
copy with the same relative paths, so the annotation files work with it as ``data_root``.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from tqdm.auto import tqdm

from videoswinv2.data.annotations import VIDEO_EXTENSIONS, find_videos
from videoswinv2.data.decoding import VideoDecodeError, open_video, quarter_turns
from videoswinv2.errors import UsageError

log = logging.getLogger(__name__)

REPORT_NAME = "prepare_report.csv"
LEDGER_NAME = ".videoswinv2-prepare.jsonl"
# Annotation and class-list files are copied; anything else that is not a video is left behind.
ANNOTATION_SUFFIXES = (".csv", ".txt", ".json", ".jsonl", ".tsv", ".lst")
# WebM admits only VP8/VP9/AV1: its H.264 copy is written as Matroska (WebM's parent format,
# read by every demuxer) under the same name, so that list files keep working.
_FORMATS = {".webm": "matroska"}


@dataclass(frozen=True)
class PrepareSettings:
    """How :func:`prepare_video` re-encodes (defaults measured with ``scripts/benchmark_data.py``).

    Args:
        short_side: the shorter displayed side in pixels (never upscaled; rounded to even).
        fps: output frame rate; None keeps the source's frames and timestamps.
        gop: frames between keyframes (a random clip decodes ``gop / 2`` extra frames on average).
        crf: x264 constant rate factor (quality; 23 is x264's default).
        preset: x264 preset (encoding speed against file size).
        tune: x264 tune; ``fastdecode`` drops CABAC, deblocking and weighted prediction.
    """

    short_side: int = 256
    fps: float | None = None
    gop: int = 32
    crf: int = 23
    preset: str = "veryfast"
    tune: str | None = "fastdecode"

    def __post_init__(self) -> None:
        if self.short_side < 16:
            raise UsageError(f"short_side must be >= 16, got {self.short_side}")
        if self.fps is not None and self.fps <= 0:
            raise UsageError(f"fps must be positive, got {self.fps}")
        if self.gop < 1:
            raise UsageError(f"gop must be >= 1, got {self.gop}")


class WrittenFiles:
    """The files ``prepare`` wrote into a folder, so that a rerun replaces or skips only those: a
    hidden JSON-lines ledger names each file before it is written and with its size and mtime
    after (the last line of a path wins). A file is ``prepare``'s while its entry matches it or
    has no stat (a killed run's write); any other file is the user's, never touched."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / LEDGER_NAME
        self.entries: dict[str, tuple[int, int] | None] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    stat = (entry["size"], entry["mtime_ns"]) if "size" in entry else None
                    self.entries[entry["path"]] = stat
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed run

    def owns(self, relative: Path) -> bool:
        if str(relative) not in self.entries:
            return False
        stat, target = self.entries[str(relative)], self.root / relative
        return stat is None or (target.is_file() and _stat(target) == stat)

    def foreign(self, relatives: list[Path]) -> list[Path]:
        """Those of ``relatives`` that exist in the folder and were not written by ``prepare``."""
        return [r for r in relatives if os.path.lexists(self.root / r) and not self.owns(r)]

    def will_write(self, relatives: list[Path]) -> None:
        self._append([{"path": str(r)} for r in relatives])

    def wrote(self, relative: Path) -> None:
        size, mtime_ns = _stat(self.root / relative)
        self._append([{"path": str(relative), "size": size, "mtime_ns": mtime_ns}])

    def _append(self, entries: list[dict]) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.writelines(json.dumps(entry) + "\n" for entry in entries)
        for entry in entries:
            self.entries[entry["path"]] = (entry["size"], entry["mtime_ns"]) if "size" in entry else None


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class PrepareResult:
    """What happened to one video: ``status`` is "done", "skipped" (a decodable output was
    there already) or "failed" (then ``kind`` and ``reason`` say why)."""

    path: str
    status: str
    source_bytes: int = 0
    output_bytes: int = 0
    kind: str = ""
    reason: str = ""


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` with the short side at ``short_side`` (never larger than it was),
    aspect kept, both even (H.264 4:2:0)."""
    scale = min(short_side / min(width, height), 1.0)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _filters(frame: av.VideoFrame, settings: PrepareSettings) -> tuple[list[tuple[str, str]], int, int]:
    """FFmpeg filters that scale, turn upright and retime ``frame``'s stream; the output size."""
    turns = quarter_turns(frame.rotation)
    width, height = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
    width, height = output_size(width, height, settings.short_side)
    # Scale first (fewer pixels to turn), in the stored orientation.
    stored = (height, width) if turns % 2 else (width, height)
    filters = [("scale", f"{stored[0]}:{stored[1]}:flags=bicubic")]
    filters += {
        0: [],
        1: [("transpose", "cclock")],
        2: [("hflip", ""), ("vflip", "")],
        3: [("transpose", "clock")],
    }[turns]
    if settings.fps is not None:
        filters.append(("fps", str(settings.fps)))
    filters.append(("format", "yuv420p"))
    return filters, width, height


def _is_done(path: Path) -> bool:
    """``path`` exists and its last frame decodes."""
    if not path.is_file():
        return False
    try:
        with open_video(str(path)) as reader:
            reader.read([reader.num_frames - 1])
    except VideoDecodeError:
        return False
    return True


def prepare_video(source: Path, target: Path, settings: PrepareSettings) -> PrepareResult:
    """Write ``source`` re-encoded to ``target`` (via a temporary file, so ``target`` is whole or
    absent); skip it if ``target`` already decodes. Broken sources come back as "failed" with a
    :data:`~videoswinv2.data.decoding.BROKEN_KINDS` kind, never as an exception."""
    name = str(source)
    if _is_done(target):
        return PrepareResult(name, "skipped", source.stat().st_size, target.stat().st_size)
    try:
        # The reader's checks (missing, no video stream, truncated, no frames) come first.
        with open_video(name) as reader:
            num_frames = reader.num_frames
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = _partial(target)
        try:
            written = _transcode(source, partial, settings)
            if settings.fps is None and written != num_frames:
                raise VideoDecodeError(f"{name}: decoded {written} of {num_frames} frames", "decode_error")
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    except VideoDecodeError as error:
        return PrepareResult(name, "failed", kind=error.kind, reason=str(error))
    except av.FFmpegError as error:
        return PrepareResult(name, "failed", kind="decode_error", reason=f"{name}: {error}")
    return PrepareResult(name, "done", source.stat().st_size, target.stat().st_size)


def _partial(target: Path) -> Path:
    """Where ``target`` is written before it is renamed into place."""
    return target.with_name(f".{target.stem}.partial{target.suffix}")


def _transcode(source: Path, target: Path, settings: PrepareSettings) -> int:
    """Decode ``source``'s video stream once, filter and encode it into ``target``; frames written."""
    written = 0
    with (
        av.open(str(source)) as src,
        av.open(str(target), "w", format=_FORMATS.get(target.suffix.lower())) as dst,
    ):
        stream = src.streams.video[0]
        stream.codec_context.thread_count = 1  # one worker process per core
        graph = out = None
        first_pts = None
        for frame in src.decode(stream):
            if graph is None:
                filters, width, height = _filters(frame, settings)
                graph = av.filter.Graph()
                chain = [graph.add_buffer(template=stream)]
                chain += [graph.add(name, args) for name, args in filters]
                chain.append(graph.add("buffersink"))
                for a, b in zip(chain, chain[1:]):
                    a.link_to(b)
                graph.configure()
                out = _add_stream(dst, stream, settings, width, height)
                first_pts = frame.pts or 0
            if frame.pts is None:
                raise VideoDecodeError(f"{source}: decoded a frame without a timestamp", "decode_error")
            frame.pts -= first_pts  # start at 0: no edit list in the output
            graph.push(frame)
            written += _encode(graph, out, dst)
        if graph is None:
            raise VideoDecodeError(f"{source}: the video stream holds no frames", "no_frames")
        graph.push(None)
        written += _encode(graph, out, dst)
        dst.mux(out.encode())
    return written


def _add_stream(
    dst: av.container.OutputContainer,
    stream: av.VideoStream,
    settings: PrepareSettings,
    width: int,
    height: int,
) -> av.VideoStream:
    rate = Fraction(settings.fps).limit_denominator(1001) if settings.fps else stream.average_rate or 30
    out = dst.add_stream("libx264", rate=rate)
    out.width, out.height, out.pix_fmt = width, height, "yuv420p"
    # Keep the source's timestamps (variable frame rates stay exact), or count output frames.
    out.codec_context.time_base = 1 / rate if settings.fps else stream.time_base
    out.codec_context.gop_size = settings.gop
    out.codec_context.thread_count = 1
    options = {"crf": str(settings.crf), "preset": settings.preset, "bf": "0"}
    if settings.tune:
        options["tune"] = settings.tune
    out.options = options
    return out


def _encode(graph: av.filter.Graph, out: av.VideoStream, dst: av.container.OutputContainer) -> int:
    """Encode every frame the filter graph has ready; how many."""
    count = 0
    while True:
        try:
            frame = graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return count
        dst.mux(out.encode(frame))
        count += 1


def _prepare_job(job: tuple[Path, Path, PrepareSettings]) -> PrepareResult:
    return prepare_video(*job)


def find_annotations(source: Path) -> list[Path]:
    """Annotation-like files (by suffix) under ``source``, relative to it."""
    return sorted(
        path
        for path in find_videos(source, ANNOTATION_SUFFIXES)
        if path.name != REPORT_NAME and (source / path).is_file()
    )


def prepare_dataset(
    source: str | Path,
    target: str | Path,
    settings: PrepareSettings | None = None,
    workers: int | None = None,
) -> list[PrepareResult]:
    """Prepare every video under ``source`` into ``target`` (same relative paths) with
    ``workers`` processes (default: all cores), copy the annotation files, and list the videos
    that could not be read (or are no regular files) in ``target/prepare_report.csv``.

    Outputs that exist and decode are skipped, so an interrupted run resumes. Only files
    ``prepare`` wrote are replaced or skipped (:class:`WrittenFiles`): a user's file where an
    output would go is refused before any work.
    """
    source, target = Path(source).resolve(), Path(target).resolve()
    settings = settings or PrepareSettings()
    if not source.is_dir():
        raise UsageError(
            f"the dataset folder {source} {'is not a folder' if source.exists() else 'does not exist'}"
        )
    if target == source or source in target.parents:
        raise UsageError(
            f"the output {target} must not be inside the dataset {source}: choose another folder"
        )
    if target.exists() and not target.is_dir():
        raise UsageError(
            f"the output {target} is a file: name a folder (new or prepare's own earlier output)"
        )
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be >= 1, got {workers}")
    found = list(find_videos(source))
    videos = [path for path in found if (source / path).is_file()]
    if not found:
        raise UsageError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) under {source}")
    annotations = find_annotations(source)
    written = WrittenFiles(target)
    foreign = written.foreign([*videos, *annotations, Path(REPORT_NAME)])
    if foreign:
        shown = ", ".join(map(str, foreign[:5])) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise UsageError(
            f"{target} holds {len(foreign)} files that prepare did not write where it would write its "
            f"own ({shown}): prepare into a new folder or into prepare's own earlier output"
        )
    target.mkdir(parents=True, exist_ok=True)
    written.will_write([*videos, *annotations, Path(REPORT_NAME)])
    for relative in annotations:
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target / relative)
        written.wrote(relative)
    results = [
        PrepareResult(
            str(source / path), "failed", kind="not_a_file", reason=f"{source / path}: not a regular file"
        )
        for path in found
        if not (source / path).is_file()
    ]
    jobs = [(source / path, target / path, settings) for path in videos]
    try:
        with tqdm(total=len(jobs), desc=f"preparing {target}", unit="video") as progress:
            with multiprocessing.Pool(min(workers or os.cpu_count() or 1, max(len(jobs), 1))) as pool:
                for result in pool.imap_unordered(_prepare_job, jobs):
                    results.append(result)
                    if result.status == "done":
                        written.wrote(Path(result.path).relative_to(source))
                    progress.update()
                    if result.status == "failed":
                        progress.set_postfix(failed=sum(r.status == "failed" for r in results))
    except KeyboardInterrupt:
        # The pool's workers may be killed before their own clean-up: no half-written file stays.
        for _, output, _ in jobs:
            _partial(output).unlink(missing_ok=True)
        raise
    results.sort(key=lambda r: r.path)
    with (target / REPORT_NAME).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "kind", "reason"])
        writer.writerows(
            [str(Path(r.path).relative_to(source)), r.kind, r.reason] for r in results if r.status == "failed"
        )
    written.wrote(Path(REPORT_NAME))
    return results


def summary(results: list[PrepareResult], target: Path) -> str:
    """One paragraph: counts by status and the disk size before and after."""
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    before = sum(r.source_bytes for r in results if r.status != "failed")
    after = sum(r.output_bytes for r in results)
    ratio = f" ({after / before:.1%})" if before else ""
    lines = [
        f"prepared {counts['done']} videos, skipped {counts['skipped']} already prepared, "
        f"{counts['failed']} failed (listed in {target / REPORT_NAME})",
        f"size of the prepared videos: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB{ratio}",
    ]
    return "\n".join(lines)
