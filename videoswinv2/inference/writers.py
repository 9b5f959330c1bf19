"""Prediction writers: Lightning callbacks that turn per-view outputs into one row per video.

``predict_step`` returns per-view outputs; a writer gathers the views of each video (they may
arrive over several batches, interleaved with other videos) and, once all are in, writes the
video's row at once, so a run that is killed keeps every finished video. A video that could not
be read gets a row with ``status`` ``failed`` and the reason. On several devices each rank writes
``OUTPUT.rankR`` and rank 0 merges them when the run ends (or at the start of the next run).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from tqdm.auto import tqdm

from videoswinv2.distributed import gather_lists
from videoswinv2.inference.inputs import mirrored_path

OK, FAILED = "ok", "failed"


# -- row files ------------------------------------------------------------------------------------


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() == ".jsonl"


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.csv`` or ``.jsonl`` written by a writer; a line cut short by a killed run is
    left out."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        if _is_jsonl(path):
            rows = []
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            return rows
        reader = csv.DictReader(f)
        return [row for row in reader if row.get("status") in (OK, FAILED) and None not in row]


def _part_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.rank*"))


class RowFile:
    """Rows appended to ``path`` (``.csv`` with ``columns``, or ``.jsonl``), flushed per batch."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path, self.columns = Path(path), list(columns)
        self._file: IO[str] | None = None
        self._csv: Any = None

    def _check_columns(self, path: Path) -> None:
        if _is_jsonl(path) or not path.is_file() or path.stat().st_size == 0:
            return
        with open(path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if header != self.columns:
            raise ValueError(
                f"{path} was written with other columns ({','.join(header)}); "
                "use the same settings (--topk) or --overwrite"
            )

    def keep_finished(self, done: Callable[[dict[str, Any]], bool] = lambda row: True) -> set[str]:
        """Merge what ranks of an interrupted run left, keep only the rows of finished videos
        (status ``ok`` and ``done(row)``; failed ones are retried) and return those videos."""
        parts = _part_files(self.path)
        rows = [row for file in [self.path, *parts] for row in read_rows(file)]
        self._check_columns(self.path)
        for part in parts:
            self._check_columns(part)
        kept = [row for row in rows if row["status"] == OK and done(row)]
        self._rewrite(kept)
        for part in parts:
            part.unlink()
        return {row["video"] for row in kept}

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(temporary, "w", newline="", encoding="utf-8")
        self._start()
        self.write(rows)
        self.close()
        os.replace(temporary, self.path)

    def _start(self) -> None:
        if not _is_jsonl(self.path):
            self._csv = csv.DictWriter(self._file, self.columns, extrasaction="ignore")
            if self._file.tell() == 0:
                self._csv.writeheader()

    def open(self, append: bool, rank: int, world: int) -> None:
        """Start writing: a fresh file, or after the rows already there (``append``)."""
        path = self.path if world == 1 else self.path.with_name(f"{self.path.name}.rank{rank}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            self._check_columns(path)
        self._file = open(path, "a" if append else "w", newline="", encoding="utf-8")
        self._start()

    def write(self, rows: list[dict[str, Any]]) -> None:
        assert self._file is not None
        for row in rows:
            if self._csv is not None:
                self._csv.writerow(row)
            else:
                self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._csv = None, None

    def merge_parts(self) -> None:
        """Append the rank files' rows to ``path`` (rank 0, after every rank closed its file)."""
        parts = _part_files(self.path)
        if not parts:
            return
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._start()
        for part in parts:
            self.write(read_rows(part))
            part.unlink()
        self.close()


# -- the writers ----------------------------------------------------------------------------------


class VideoWriter(BasePredictionWriter, ABC):
    """Gathers per-view outputs into videos; subclasses write a finished or failed video."""

    def __init__(self, progress: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.progress = progress
        self.failed: list[tuple[str, str]] = []
        self._pending: dict[str, dict[str, list[torch.Tensor | None]]] = {}
        self._bar: tqdm | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Lightning wants sample indices for writers; ours key rows by the video paths in each batch.
        warnings.filterwarnings(
            "ignore", message="Couldn't infer the batch indices fetched from your dataloader"
        )

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.failed, self._pending = [], {}
        dataset = getattr(trainer.predict_dataloaders, "dataset", None)
        total = len(dataset.videos) if hasattr(dataset, "videos") else None
        if self.progress and trainer.is_global_zero:
            desc = "videos" if trainer.world_size == 1 else "videos (rank 0's share)"
            self._bar = tqdm(total=total, unit="video", desc=desc, dynamic_ncols=True)

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: dict[str, torch.Tensor],
        batch_indices: Sequence[int] | None,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        done: list[tuple[str, dict[str, torch.Tensor]]] = []
        outputs = {key: value.cpu() for key, value in prediction.items()}
        for k, (path, view) in enumerate(zip(batch["path"], batch["view"].tolist())):
            slots = self._pending.setdefault(path, {key: [None] * batch["num_views"] for key in outputs})
            for key, value in outputs.items():
                slots[key][view] = value[k]
            if all(v is not None for v in next(iter(slots.values()))):
                done.append(
                    (path, {key: torch.stack(views) for key, views in self._pending.pop(path).items()})
                )
        if done:
            self.write_videos(done)
        for path, reason in batch["failed"]:
            self.failed.append((path, reason))
            self.write_failed(path, reason)
        if self._bar is not None:
            self._bar.update(len(done) + len(batch["failed"]))

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for path in list(self._pending):  # a video whose views stopped coming part-way
            self._pending.pop(path)
            self.failed.append((path, "not all views were produced"))
            self.write_failed(path, "not all views were produced")
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.close()
        trainer.strategy.barrier()
        self.failed = gather_lists(self.failed)
        if trainer.is_global_zero:
            self.merge()

    @abstractmethod
    def write_videos(self, videos: list[tuple[str, dict[str, torch.Tensor]]]) -> None:
        """Write finished videos: ``(path, {output: (V, ...)})`` with every view's output."""

    @abstractmethod
    def write_failed(self, path: str, reason: str) -> None:
        """Write the row of a video that could not be read."""

    @abstractmethod
    def close(self) -> None:
        """Close this rank's output."""

    @abstractmethod
    def merge(self) -> None:
        """On rank 0 after every rank closed: combine the ranks' outputs."""


def prediction_columns(topk: int) -> list[str]:
    return ["video", "status", "reason"] + [
        f"top{j}_{x}" for j in range(1, topk + 1) for x in ("label", "prob")
    ]


class PredictionWriter(VideoWriter):
    """Top-k classes of each video (softmax averaged over its views) to ``output`` (``.csv`` or
    ``.jsonl``), or to the terminal when ``output`` is None.

    Args:
        output: the file; None prints each video as it finishes.
        topk: classes per video.
        classes: class names; default: the data module's ``classes``.
        append: keep the rows already in ``output`` (a resumed run) instead of starting afresh.
        progress: show a progress bar over videos.
    """

    def __init__(
        self,
        output: str | None = None,
        topk: int = 5,
        classes: Sequence[str] | None = None,
        append: bool = False,
        progress: bool = True,
    ) -> None:
        super().__init__(progress)
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        if output is not None and Path(output).suffix.lower() not in (".csv", ".jsonl"):
            raise ValueError(f"the output {output} must end in .csv or .jsonl")
        self.topk, self.classes, self.append = topk, list(classes) if classes else None, append
        self.file = None if output is None else RowFile(Path(output), prediction_columns(topk))

    def keep_finished(self) -> set[str]:
        """Videos with a row in ``output`` from an earlier run (none when printing)."""
        return set() if self.file is None else self.file.keep_finished()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        if self.classes is None:
            self.classes = list(getattr(trainer.datamodule, "classes", None) or [])
        if not self.classes:
            raise ValueError(
                "PredictionWriter needs class names: pass classes= or use a data module with classes"
            )
        if self.file is not None:
            self.file.open(self.append, trainer.global_rank, trainer.world_size)

    def _emit(self, rows: list[dict[str, Any]]) -> None:
        if self.file is not None:
            self.file.write(rows)
            return
        for row in rows:
            lines = [row["video"]]
            if row["status"] == OK:
                lines += [f"  {j}. {name:<40} {prob:.4f}" for j, (name, prob) in enumerate(row["top"], 1)]
            else:
                lines.append(f"  failed: {row['reason']}")
            tqdm.write("\n".join(lines), file=sys.stdout)

    def write_videos(self, videos: list[tuple[str, dict[str, torch.Tensor]]]) -> None:
        rows = []
        for path, outputs in videos:
            probs = outputs["probs"].mean(0)
            values, indices = probs.topk(min(self.topk, len(probs)))
            top = [(self.classes[i], float(v)) for i, v in zip(indices.tolist(), values)]
            rows.append(self._row(path, OK, "", top))
        self._emit(rows)

    def write_failed(self, path: str, reason: str) -> None:
        self._emit([self._row(path, FAILED, reason, [])])

    def _row(self, path: str, status: str, reason: str, top: list[tuple[str, float]]) -> dict[str, Any]:
        row: dict[str, Any] = {"video": path, "status": status, "reason": reason}
        if self.file is None:
            row["top"] = top
        elif _is_jsonl(self.file.path):
            row["labels"] = [name for name, _ in top]
            row["probs"] = [round(prob, 6) for _, prob in top]
        else:
            for j, (name, prob) in enumerate(top, 1):
                row[f"top{j}_label"], row[f"top{j}_prob"] = name, f"{prob:.6f}"
        return row

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def merge(self) -> None:
        if self.file is not None:
            self.file.merge_parts()


INDEX_COLUMNS = ["video", "feature", "num_views", "status", "reason"]


class FeatureWriter(VideoWriter):
    """Backbone features of each video as float32 ``.npy`` files under ``output_dir`` (the video's
    path mirrored, ``a.mp4`` -> ``a.mp4.npy``) plus ``index.csv``.

    The saved array is the pooled pre-logits ``(C',)`` averaged over the views; ``per_view`` keeps
    ``(V, C')``; ``feature_map`` saves the ``(C', T', H', W')`` maps instead (``(V, C', T', H', W')``
    with ``per_view``).
    """

    def __init__(
        self,
        output_dir: str,
        per_view: bool = False,
        feature_map: bool = False,
        append: bool = False,
        progress: bool = True,
    ) -> None:
        super().__init__(progress)
        self.root = Path(output_dir)
        self.per_view, self.feature_map, self.append = per_view, feature_map, append
        self.index = RowFile(self.root / "index.csv", INDEX_COLUMNS)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        pl_module.predict_feature_map = self.feature_map  # predict_step returns the maps only when asked
        self.index.open(self.append, trainer.global_rank, trainer.world_size)

    def feature_file(self, video: str) -> Path:
        return self.root / mirrored_path(video, ".npy")

    def write_videos(self, videos: list[tuple[str, dict[str, torch.Tensor]]]) -> None:
        rows = []
        for path, outputs in videos:
            views = outputs["feature_map" if self.feature_map else "features"]
            array = (views if self.per_view else views.mean(0)).float().numpy()
            target = self.feature_file(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(target.name + ".tmp")
            with open(temporary, "wb") as f:  # renamed when complete: a killed run leaves no half file
                np.save(f, array)
            os.replace(temporary, target)
            feature = target.relative_to(self.root).as_posix()
            rows.append(
                {"video": path, "feature": feature, "num_views": len(views), "status": OK, "reason": ""}
            )
        self.index.write(rows)

    def write_failed(self, path: str, reason: str) -> None:
        self.index.write([{"video": path, "feature": "", "num_views": 0, "status": FAILED, "reason": reason}])

    def close(self) -> None:
        self.index.close()

    def merge(self) -> None:
        self.index.merge_parts()

    def keep_finished(self) -> set[str]:
        """Videos whose ``ok`` row is in the index and whose feature file exists."""
        return self.index.keep_finished(lambda row: (self.root / row["feature"]).is_file())
