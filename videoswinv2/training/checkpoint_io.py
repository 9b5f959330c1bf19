"""Checkpoint files: ``WholeCheckpointIO`` writes them whole or not at all, ``BestCheckpoint``
keeps the best epoch by the module's own score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from videoswinv2.files import replaced_atomically


class WholeCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO``, but a local checkpoint replaces its file in one step
    (``files.replaced_atomically``): a kill or a full disk mid-write leaves the previous
    ``last.ckpt`` readable (Lightning's goes through ``/tmp``, a copy across file systems). The
    trainer's default plugin; remote paths (``s3://``) are Lightning's."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(path) as file:
            torch.save(checkpoint, file)


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` of the best epoch, by ``monitor`` or, left out, by the
    module's ``monitored_metric`` (``VideoClassifier``: ``val/top1``, ``val/mAP`` when
    multi-label), highest first. The trainer's default best checkpoint, so that a multi-label run
    needs no setting of its own."""

    def __init__(self, monitor: str | None = None, mode: str = "max", **kwargs: Any) -> None:
        super().__init__(monitor=monitor, mode=mode, **kwargs)

    @property
    def state_key(self) -> str:
        # ModelCheckpoint's: a run checkpointed while the best epoch was a plain ModelCheckpoint's
        # (before this class) resumes knowing its best epoch.
        return super().state_key.replace(type(self).__qualname__, "ModelCheckpoint", 1)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.monitor is None:
            self.monitor = getattr(pl_module, "monitored_metric", None)
        super().setup(trainer, pl_module, stage)
