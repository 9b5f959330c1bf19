"""Writers: Lightning callbacks that write each :class:`~videoswinv2.training.evaluation.Result`
``VideoClassifier.predict_step`` returns as it comes, so a killed run keeps every finished video
(one that could not be read gets a ``failed`` row). On several devices each rank writes
``OUTPUT.rankR``, which rank 0 merges; what may be written where is :mod:`.outputs`' business.
"""

from __future__ import annotations

import sys
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_only
from tqdm.auto import tqdm

from videoswinv2.distributed import gather_lists
from videoswinv2.errors import UsageError
from videoswinv2.files import replaced_atomically
from videoswinv2.inference.inputs import mirrored_path
from videoswinv2.inference.outputs import (
    OK,
    OutputError,
    RowFile,
    check_row_file,
    claim,
    file_sha256,
    is_jsonl,
    resolved,
)
from videoswinv2.training.evaluation import DEFAULT_THRESHOLD, FAILED, Result, RowSchema


class ResultWriter(BasePredictionWriter, ABC):
    """Writes results as they come; subclasses say where and how.

    Before a run, :meth:`prepare` claims the output (see :mod:`.outputs`) and says what an
    earlier run already did; ``lightning predict``, where nothing calls it, redoes everything.
    """

    tool = "videoswinv2"
    unit = "video"

    def __init__(self, progress: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.progress = progress
        self.failed: list[tuple[str, str]] = []
        self._bar: tqdm | None = None
        self._prepared = False

    def prepare(self, settings: dict[str, Any], overwrite: bool = False) -> Any:
        """Claim the output for a run with ``settings``; returns what is done already. Only rank 0
        changes files: other ranks (which run the command again under DDP) read them."""
        self._prepared = True
        return self._prepare(settings, overwrite, rank_zero_only.rank == 0)

    @abstractmethod
    def _prepare(self, settings: dict[str, Any], overwrite: bool, writes: bool) -> Any: ...

    def _kept(
        self, file: RowFile, done: Callable, settings: dict[str, Any], overwrite: bool, writes: bool, also=()
    ) -> set[str]:
        """The videos of ``file``'s rows that ``done`` accepts; rank 0 (``writes``) first claims the
        output and keeps those rows (continuing) or none (starting afresh)."""
        if not writes:
            rows = file.rows(done)
        elif claim(file.path, self.tool, settings, overwrite=overwrite, also=also):
            rows = file.keep(done)
        else:
            rows = file.reset()
        return {resolved(row["video"]) for row in rows}

    @abstractmethod
    def write(self, results: list[Result], finished: list[Any]) -> None:
        """Write the results of one batch; ``finished``: the stream tasks that ended with it."""

    @abstractmethod
    def row_files(self) -> list[RowFile]:
        """The files this writer appends to."""

    def count(self, results: list[Result]) -> int:
        """How far the progress bar moves for these results."""
        return len(results)

    def bar_total(self, trainer: pl.Trainer) -> int | None:
        tasks = getattr(trainer.predict_dataloaders, "dataset", None)
        return len({task.video for task in tasks.tasks}) if hasattr(tasks, "tasks") else None

    def lightning_settings(self, trainer: pl.Trainer) -> dict[str, Any]:
        """What identifies a ``lightning predict`` run: its checkpoint and the data module's views."""
        ckpt = trainer.ckpt_path
        views = getattr(trainer.datamodule, "test_views", None)
        return {
            "checkpoint_sha256": file_sha256(ckpt) if ckpt and Path(ckpt).is_file() else None,
            "views": asdict(views) if views is not None else None,
        }

    # -- Lightning hooks ---------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Lightning wants sample indices for writers; ours key rows by the items in each result.
        warnings.filterwarnings(
            "ignore", message="Couldn't infer the batch indices fetched from your dataloader"
        )

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._prepared:
            self.prepare(self.lightning_settings(trainer), overwrite=True)
        self.failed = []
        if self.progress and trainer.is_global_zero:
            desc = f"{self.unit}s" if trainer.world_size == 1 else f"{self.unit}s (rank 0's share)"
            self._bar = tqdm(total=self.bar_total(trainer), unit=self.unit, desc=desc, dynamic_ncols=True)
        for file in self.row_files():
            file.open(trainer.global_rank, trainer.world_size)

    def write_on_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: dict[str, list], *_: Any
    ) -> None:
        results, finished = prediction.get("results", []), prediction.get("finished", [])
        self.failed += [(r.item.video, r.reason) for r in results if not r.ok]
        self.write(results, finished)
        if self._bar is not None:
            self._bar.update(self.count(results))

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()
        trainer.strategy.barrier()
        self.failed = gather_lists(self.failed)
        if trainer.is_global_zero:
            for file in self.row_files():
                file.merge_parts()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close()  # every finished row is on disk already; the next run continues from them

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        for file in self.row_files():
            file.close()


class PredictionWriter(ResultWriter):
    """Top-k classes of each video (its views' probabilities averaged, or as the model's
    ``test_view_reduction`` says), in the row schema of
    :class:`~videoswinv2.training.evaluation.RowSchema`; for a multi-label model, also every
    class whose probability reaches ``threshold``.

    Args:
        output: a ``.csv`` or ``.jsonl`` file; None prints each video as it finishes.
        topk: classes per video.
        classes: class names; default: the data module's ``classes``.
        threshold: a multi-label model's rows name the classes whose probability reaches it (a
            single-label model's rows, only the top-k: its classes share one softmax).
        progress: show a progress bar over videos.
    """

    tool = "videoswinv2 predict"

    def __init__(
        self,
        output: str | None = None,
        topk: int = 5,
        classes: Sequence[str] | None = None,
        threshold: float | None = DEFAULT_THRESHOLD,
        progress: bool = True,
    ) -> None:
        super().__init__(progress)
        if topk < 1:
            raise UsageError(f"topk must be >= 1, got {topk}")
        if threshold is not None and not 0 <= threshold <= 1:
            raise UsageError(f"threshold is a probability, from 0 to 1: got {threshold}")
        check_row_file(output)
        self.threshold = threshold
        self.schema = RowSchema(topk)
        self.classes = None if classes is None else list(classes)
        self.file = None if output is None else RowFile(Path(output), self.schema.columns())

    def for_model(self, multi_label: bool) -> None:
        """Write the rows of a multi-label model (with its classes over the threshold) or of a
        single-label one; before :meth:`prepare`, which reads the rows an earlier run wrote."""
        self.schema = RowSchema(self.schema.topk, threshold=self.threshold if multi_label else None)
        if self.file is not None:
            self.file.columns = self.schema.columns()

    def lightning_settings(self, trainer: pl.Trainer) -> dict[str, Any]:
        threshold = self.schema.threshold
        return {
            **super().lightning_settings(trainer),
            "topk": self.schema.topk,
            **({"threshold": threshold} if threshold is not None else {}),
        }

    def _prepare(self, settings: dict[str, Any], overwrite: bool, writes: bool) -> set[str]:
        """Videos finished by an earlier run (their ``ok`` rows are kept; failed ones are retried)."""
        if self.file is None:
            return set()
        return self._kept(self.file, lambda row: row["status"] == OK, settings, overwrite, writes)

    def row_files(self) -> list[RowFile]:
        return [] if self.file is None else [self.file]

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.classes is None:
            self.classes = list(getattr(trainer.datamodule, "classes", None) or [])
        if not self.classes:
            raise ValueError(
                "PredictionWriter needs class names: pass classes= or use a data module with classes"
            )
        self.for_model(bool(pl_module.hparams.get("multi_label", False)))  # `lightning predict`: its module's
        super().on_predict_start(trainer, pl_module)

    def write(self, results: list[Result], finished: list[Any]) -> None:
        if self.file is not None:
            jsonl = is_jsonl(self.file.path)
            self.file.write([self.schema.row(r, self.classes, jsonl) for r in results])
            return
        threshold = self.schema.threshold
        for result in results:
            lines = [result.item.video]
            if result.ok and threshold is not None:
                over = [f"{self.classes[c]} ({p:.4f})" for c, p in result.above(threshold)]
                lines.append(f"  over {threshold:g}: {', '.join(over) or 'none'}")
            if result.ok:
                top = result.top(self.schema.topk)
                lines += [f"  {j}. {self.classes[c]:<40} {p:.4f}" for j, (c, p) in enumerate(top, 1)]
            else:
                lines.append(f"  failed: {result.reason}")
            tqdm.write("\n".join(lines), file=sys.stdout)


INDEX_COLUMNS = ["video", "status", "reason", "feature", "num_views"]


class FeatureWriter(ResultWriter):
    """Backbone features of each video as float32 ``.npy`` files under ``output_dir`` (the video's
    path mirrored, ``a.mp4`` -> ``a.mp4.npy``) plus ``index.csv``: the pooled pre-logits ``(C',)``
    averaged over the views, or ``(V, C')`` with ``per_view``; ``feature_map`` saves the ``(C',
    T', H', W')`` maps instead (``(V, C', T', H', W')`` with ``per_view``)."""

    tool = "videoswinv2 extract-features"

    def __init__(
        self, output_dir: str, per_view: bool = False, feature_map: bool = False, progress: bool = True
    ) -> None:
        super().__init__(progress)
        self.root = Path(output_dir)
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(
                f"--output {output_dir} is a file: name a folder for the .npy files and index.csv"
            )
        self.per_view, self.feature_map = per_view, feature_map
        self.index = RowFile(self.root / "index.csv", INDEX_COLUMNS)

    def lightning_settings(self, trainer: pl.Trainer) -> dict[str, Any]:
        return {
            **super().lightning_settings(trainer),
            "per_view": self.per_view,
            "feature_map": self.feature_map,
        }

    def _inside(self, feature: str) -> bool:
        """Whether an index entry names a file inside the output folder (others are not ours)."""
        root = self.root.resolve()
        return bool(feature) and (root / feature).resolve().is_relative_to(root)

    def _finished(self, row: dict[str, Any]) -> bool:
        return row["status"] == OK and self._inside(row["feature"]) and (self.root / row["feature"]).is_file()

    def _prepare(self, settings: dict[str, Any], overwrite: bool, writes: bool) -> set[str]:
        """Videos whose ``ok`` row is in the index and whose feature file exists in the folder."""
        return self._kept(self.index, self._finished, settings, overwrite, writes, also=[self.root])

    def row_files(self) -> list[RowFile]:
        return [self.index]

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.evaluator.keep_feature_maps(self.feature_map)  # the results hold the maps only when asked
        super().on_predict_start(trainer, pl_module)

    def feature_file(self, video: str) -> Path:
        return self.root / mirrored_path(video, ".npy")

    def write(self, results: list[Result], finished: list[Any]) -> None:
        rows = []
        for result in results:
            row = {"video": result.item.video, "status": result.status, "reason": result.reason}
            if result.status == FAILED:
                rows.append({**row, "feature": "", "num_views": 0})
                continue
            views = result.feature_map if self.feature_map else result.features
            array = (views if self.per_view else views.mean(0)).float().numpy()
            target = self.feature_file(result.item.video)
            target.parent.mkdir(parents=True, exist_ok=True)
            with replaced_atomically(target) as file:  # a killed run leaves no half file
                np.save(file, array)
            rows.append({**row, "feature": target.relative_to(self.root).as_posix(), "num_views": len(views)})
        self.index.write(rows)
