"""Reading and writing state dicts safely: pickles with ``torch.load(weights_only=True)`` (which
refuses anything that would run code), ``.safetensors`` and Hugging Face ``save_pretrained``
folders (sharded or not, with their ``config.json``), wrappers peeled off into a flat
``{name: Tensor}`` mapping.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import Tensor

from videoswinv2.errors import CheckpointError
from videoswinv2.files import replaced_atomically

__all__ = ["CheckpointError", "RawCheckpoint", "read_raw_checkpoint", "unwrap_state_dict", "save_state_dict"]

PathLike = str | os.PathLike

# Weight files of a Hugging Face save_pretrained folder, in the order transformers prefers them.
HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Keys under which training scripts nest the weights (official Swin: 'model'; Lightning: 'state_dict').
WRAPPER_KEYS = ("model", "state_dict", "module")


@dataclass(frozen=True)
class RawCheckpoint:
    """Tensors of a checkpoint file as stored (original key names) and where they came from, its
    Hugging Face ``config.json`` (or None), and ``metadata``: what the file holds beside the
    tensors (a safetensors header's metadata, or the other entries of a wrapping dict)."""

    tensors: dict[str, Tensor]
    config: dict[str, Any] | None
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


def read_raw_checkpoint(path: PathLike) -> RawCheckpoint:
    """Read a checkpoint file or Hugging Face folder into a flat ``{name: Tensor}`` mapping."""
    path = Path(path)
    if path.is_dir():
        weights = _hf_weight_file(path)
        return RawCheckpoint(_read_weight_file(weights), _read_hf_config(path), str(path))
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint file or folder: {path}")
    # A single weight file from a Hugging Face snapshot still has its config beside it.
    config = _read_hf_config(path.parent) if path.name in HF_WEIGHT_FILES else None
    if path.suffix == ".safetensors":
        return RawCheckpoint(_read_safetensors(path), config, str(path), safetensors_metadata(path))
    obj = _torch_load(path)
    metadata = {k: v for k, v in obj.items() if k not in WRAPPER_KEYS} if _is_wrapper(obj) else {}
    return RawCheckpoint(unwrap_state_dict(obj, str(path)), config, str(path), metadata)


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, Tensor]:
    """Peel ``{'model'|'state_dict'|'module': ...}`` wrappers and a DDP ``module.`` prefix.

    Non-tensor entries beside the weights (epoch, optimizer state, ...) are ignored once the
    weights are found; a mapping with no tensors and no known wrapper key is an error.
    """
    while _is_wrapper(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            keys = ", ".join(map(repr, list(obj)[:10]))
            raise CheckpointError(
                f"{source} holds no state dict: a mapping with keys [{keys}] and none of the "
                f"wrapper keys {WRAPPER_KEYS} that hold weights"
            )
        obj = inner
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source} is not a checkpoint: it holds a {type(obj).__name__}, not a state dict"
        )
    state_dict = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    return state_dict


def save_state_dict(
    state_dict: Mapping[str, Tensor], path: PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write a flat state dict, whole or not at all: safetensors for a ``.safetensors`` suffix
    (``metadata`` into its header), ``torch.save`` for ``.pth``/``.pt`` (no metadata: it must load
    with ``load_state_dict``)."""
    path = Path(path)
    if path.suffix not in (".safetensors", ".pth", ".pt"):
        raise CheckpointError(f"cannot tell the format of {path}: use a .safetensors or .pth suffix")
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    with replaced_atomically(path) as file:
        if path.suffix == ".safetensors":
            file.write(save(tensors, metadata=dict(metadata or {})))
        else:
            torch.save(tensors, file)


def _holds_tensors(obj: Mapping) -> bool:
    return any(isinstance(v, Tensor) for v in obj.values())


def _is_wrapper(obj: Any) -> bool:
    return isinstance(obj, Mapping) and not _holds_tensors(obj)


def safetensors_metadata(path: PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file's header."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _hf_weight_file(folder: Path) -> Path:
    for name in HF_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        f"{folder} is a folder without Hugging Face weights (none of {', '.join(HF_WEIGHT_FILES)})"
    )


def _read_hf_config(folder: Path) -> dict[str, Any] | None:
    config_file = folder / "config.json"
    if not config_file.is_file():
        return None
    try:
        return json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {config_file}: {err}") from err


def _read_weight_file(path: Path) -> dict[str, Tensor]:
    if path.name.endswith(".index.json"):
        return _read_sharded(path)
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    return unwrap_state_dict(_torch_load(path), str(path))


def _read_sharded(index_file: Path) -> dict[str, Tensor]:
    """A sharded Hugging Face checkpoint: ``{'weight_map': {name: shard file}}`` plus the shards."""
    try:
        weight_map = json.loads(index_file.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{index_file} is not a Hugging Face shard index: {err!r}") from err
    tensors: dict[str, Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(_read_weight_file(index_file.parent / shard))
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise CheckpointError(f"{index_file} lists tensors no shard holds: {', '.join(missing[:5])}")
    return tensors


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"cannot read {path} as safetensors (truncated or not a safetensors file): {err}"
        ) from err


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickler_reason(str(err))
        # The restricted unpickler also fails on bytes that are no pickle at all ("Unsupported operand").
        if "Weights only load failed" in str(err) and not reason.startswith("Unsupported operand"):
            raise CheckpointError(_refusal_message(path, reason)) from err
        raise CheckpointError(_unreadable_message(path, reason)) from err
    # torch.load raises many types for damaged files: EOF, OSError, KeyError, RuntimeError.
    except Exception as err:
        raise CheckpointError(_unreadable_message(path, f"{type(err).__name__}: {err}")) from err


def _unpickler_reason(error: str) -> str:
    """The restricted unpickler's own complaint, without torch's generic advice around it."""
    found = re.search(r"WeightsUnpickler error:(.*?)(?:Please use|Check the documentation|$)", error, re.S)
    return " ".join((found[1] if found else error).split())


def _refusal_message(path: Path, reason: str) -> str:
    return (
        f"refusing to load {path}: unpickling it would need arbitrary code ({reason}), which "
        "torch.load(weights_only=True) forbids because a pickle can run anything. If you trust the "
        "file, extract the weights once with torch.load(path, weights_only=False) and save just "
        "the state dict (torch.save or safetensors)."
    )


def _unreadable_message(path: Path, detail: str) -> str:
    size = path.stat().st_size
    if size == 0:
        what = "it is empty"
    elif _starts_with(path, b"PK\x03\x04") and not zipfile.is_zipfile(path):
        what = "it is a truncated torch zip archive (no central directory)"
    else:
        what = "it is truncated, corrupted or not a PyTorch checkpoint"
    return f"cannot read {path} ({size} bytes): {what} [{detail}]"


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as f:
        return f.read(len(magic)) == magic
