"""``WholeCheckpointIO``: checkpoints that are either whole or as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
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
