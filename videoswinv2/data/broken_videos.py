"""Per-epoch report of the videos skipped as broken, from the ``broken`` list of each batch."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl

from videoswinv2.distributed import gather_lists

log = logging.getLogger(__name__)


class BrokenVideoLogger(pl.Callback):
    """Collects ``batch["broken"]`` (and the videos of a ``ViewStream`` batch's ``failed``) and,
    at the end of every train/val/test epoch, logs the count as ``data/broken_videos_{stage}`` and
    one warning line naming the files (all ranks together). One of the trainer's default
    callbacks (``videoswinv2/trainer_defaults.yaml``).
    """

    def __init__(self) -> None:
        self._paths: dict[str, list[str]] = {"train": [], "val": [], "test": []}

    def _collect(self, stage: str, batch: Any) -> None:
        if isinstance(batch, dict):
            self._paths[stage].extend(batch.get("broken", ()))
            self._paths[stage].extend(item.video for item, _ in batch.get("failed", ()))

    def _report(self, stage: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        paths, self._paths[stage] = self._paths[stage], []
        # Summed over ranks by Lightning; the names are gathered for the log line.
        pl_module.log(f"data/broken_videos_{stage}", float(len(paths)), sync_dist=True, reduce_fx="sum")
        paths = gather_lists(paths)
        if paths and trainer.is_global_zero:
            log.warning(
                "epoch %d %s: skipped %d broken videos: %s",
                trainer.current_epoch,
                stage,
                len(paths),
                ", ".join(sorted(set(paths))),
            )

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._collect("train", batch)

    def on_validation_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, *_
    ) -> None:
        self._collect("val", batch)

    def on_test_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, *_) -> None:
        self._collect("test", batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report("train", trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report("val", trainer, pl_module)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report("test", trainer, pl_module)
