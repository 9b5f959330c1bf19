"""Reading a :class:`~videoswinv2.record.ModelRecord` back from any file the package writes: the
one place that opens a file to learn what model it holds.

A Lightning checkpoint (``.ckpt``) gives its record and its state dict; a ``.safetensors`` header,
an exported ``.onnx`` or ``.pt2`` give the record's strings (:meth:`ModelRecord.to_strings`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from videoswinv2.record import LIGHTNING_KEY, PT2_EXTRA_FILE, ModelRecord

from .io import CheckpointError, PathLike, safetensors_metadata

__all__ = ["read_lightning_checkpoint", "read_record", "read_strings"]


def read_lightning_checkpoint(path: PathLike) -> dict[str, Any] | None:
    """The checkpoint dict (tensors memory-mapped) if ``path`` is a Lightning checkpoint of one of
    the package's modules, else None (``read_raw_checkpoint`` then gives the precise error)."""
    path = Path(path)
    if path.suffix == ".safetensors" or not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return obj if isinstance(obj, dict) and LIGHTNING_KEY in obj and "state_dict" in obj else None


def read_strings(path: PathLike) -> dict[str, str]:
    """The record strings of a ``.safetensors`` file or an exported ``.onnx`` / ``.pt2`` model."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return safetensors_metadata(path)
    if path.suffix == ".onnx":
        import onnx  # optional: only for its own format

        model = onnx.load(str(path), load_external_data=False)
        return {prop.key: prop.value for prop in model.metadata_props}
    if path.suffix == ".pt2":
        extra = {PT2_EXTRA_FILE: ""}
        torch.export.load(str(path), extra_files=extra)
        return json.loads(extra[PT2_EXTRA_FILE] or "{}")
    raise CheckpointError(f"{path}: metadata strings are read from .safetensors, .onnx and .pt2 files only")


def read_record(path: PathLike) -> ModelRecord:
    """The record of any file the package writes (empty where the file records nothing)."""
    checkpoint = read_lightning_checkpoint(path)
    if checkpoint is not None:
        return ModelRecord.from_lightning(checkpoint)
    if Path(path).suffix in (".safetensors", ".onnx", ".pt2"):
        return ModelRecord.from_strings(read_strings(path), str(path))
    return ModelRecord()
