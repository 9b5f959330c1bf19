"""What a canonical SwinV2 state dict says about its architecture: widths, depths and heads from
tensor shapes; the windows it was trained with from stored ``relative_coords_table`` buffers, a
Hugging Face ``config.json`` or this package's record (timm state dicts do not show them).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from videoswinv2.record import ModelRecord

from .io import CheckpointError

_logger = logging.getLogger(__name__)

# Per stage, as the 3D model takes it: 0 = none, s = spatial (s, s), or (t, h, w) with 0 = none.
WindowSize = int | tuple[int, int, int]

_BLOCK_KEY = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.")


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """Hyper-parameters read off a canonical (2D or 3D) SwinV2 state dict: ``patch_size`` is
    ``(ph, pw)`` or ``(pt, ph, pw)``; ``num_classes`` is None without a classifier."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    num_classes: int | None
    in_chans: int
    patch_size: tuple[int, ...]
    mlp_ratio: float

    def describe(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, depths={self.depths}, num_heads={self.num_heads}, "
            f"mlp_ratio={self.mlp_ratio:g}"
        )


def infer_architecture(state_dict: Mapping[str, Tensor]) -> Architecture:
    """Read embed dim, depths, heads, classes, input channels, patch and MLP ratio off the shapes."""
    proj = _require(state_dict, "patch_embed.proj.weight")  # (C, in, [pt,] ph, pw)
    blocks: dict[int, set[int]] = defaultdict(set)
    for key in state_dict:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks[int(match[1])].add(int(match[2]))
    if not blocks:
        raise CheckpointError("no transformer blocks (layers.<i>.blocks.<j>.*) in the state dict")
    depths = []
    for stage in range(max(blocks) + 1):
        found = blocks.get(stage, set())
        if not found or found != set(range(len(found))):
            raise CheckpointError(
                f"stage {stage} has blocks {sorted(found)}, expected 0..n-1: the state dict is incomplete"
            )
        depths.append(len(found))
    num_heads = tuple(
        _require(state_dict, f"layers.{i}.blocks.0.attn.logit_scale").shape[0] for i in range(len(depths))
    )
    fc1 = _require(state_dict, "layers.0.blocks.0.mlp.fc1.weight")  # (hidden, C)
    head = state_dict.get("head.fc.weight")
    return Architecture(
        embed_dim=proj.shape[0],
        depths=tuple(depths),
        num_heads=num_heads,
        num_classes=None if head is None else head.shape[0],
        in_chans=proj.shape[1],
        patch_size=tuple(proj.shape[2:]),
        mlp_ratio=fc1.shape[0] / fc1.shape[1],
    )


def pretrained_windows_from_tables(
    buffers: Mapping[str, Tensor], num_stages: int
) -> tuple[WindowSize, ...] | None:
    """The window each stage normalised its CPB coordinates by, read from stored tables: a
    ``relative_coords_table`` ``(1, 2Wh-1, 2Ww-1, 2)`` peaks at ``log2(8 (W-1) / D + 1) / 3`` with
    D the denominator, and the 3D model gets ``D + 1`` (0 for a window of one), so its bias
    function is the one trained. None when a stage has no table or one off that formula.
    """
    windows: list[WindowSize] = []
    for stage in range(num_stages):
        table = buffers.get(f"layers.{stage}.blocks.0.attn.relative_coords_table")
        if table is None:
            return None
        window = _window_from_table(table)
        if window is None:
            _logger.warning(
                "stage %d's relative_coords_table %s does not follow SwinV2's formula; "
                "pretrained window sizes unknown",
                stage,
                tuple(table.shape),
            )
            return None
        windows.append(window)
    return tuple(windows)


def pretrained_windows_from_hf_config(
    config: Mapping[str, Any] | None, num_stages: int
) -> tuple[WindowSize, ...] | None:
    """Per-stage pretrained windows from a transformers ``Swinv2Config`` dict: its
    ``pretrained_window_sizes[i]`` where > 0, else the stage's own window, which transformers
    shrinks to the feature size (``image // patch // 2**i``). None for another config."""
    if not config or config.get("model_type") != "swinv2" or len(config.get("depths", ())) != num_stages:
        return None
    grid = _first(config["image_size"]) // _first(config["patch_size"])
    pretrained = config.get("pretrained_window_sizes") or [0] * num_stages
    windows = []
    for stage, given in enumerate(pretrained):
        effective = min(config["window_size"], grid // 2**stage)
        windows.append(given if given > 0 else (effective if effective > 1 else 0))
    return tuple(windows)


def pretrained_windows_from_metadata(
    metadata: Mapping[str, Any] | None, num_stages: int
) -> tuple[WindowSize, ...] | None:
    """Per-stage windows a 3D checkpoint of this package records beside its tensors (see
    :mod:`videoswinv2.record`: a ``videoswinv2 inflate`` safetensors header, or a ``VideoClassifier``
    Lightning checkpoint's ``model_kwargs``). None when it records none (or not one per stage)."""
    windows = ModelRecord.from_file_entries(metadata).pretrained_window_sizes
    if not isinstance(windows, (list, tuple)) or len(windows) != num_stages:
        return None
    return tuple(w if isinstance(w, int) else tuple(int(v) for v in w) for w in windows)


def _window_from_table(table: Tensor) -> WindowSize | None:
    """``(1, 2Wh-1, 2Ww-1, 2)`` table -> per axis ``D + 1`` (0 for a window of one), or None
    unless the whole table is SwinV2's formula for those denominators."""
    if table.dim() != 4 or table.shape[0] != 1 or table.shape[-1] != 2:
        return None
    table = table[0].double()
    sizes = []
    for axis in range(2):
        window = (table.shape[axis] + 1) // 2
        if window == 1:  # a single offset of 0, whatever the denominator (the official code stores 0/0)
            sizes.append(0)
            continue
        values = table[..., axis]
        peak = values.max()  # at offset W-1: log2(8 (W-1) / D + 1) / 3
        if not peak > 0:
            return None
        denominator = round((8 * (window - 1) / (2 ** (3 * peak) - 1)).item())
        if denominator < 1:
            return None
        offsets = torch.arange(-(window - 1), window, dtype=torch.float64) / denominator * 8
        expected = torch.sign(offsets) * torch.log2(offsets.abs() + 1) / 3
        expected = expected.view(-1, 1) if axis == 0 else expected.view(1, -1)
        if not torch.allclose(values, expected.expand_as(values), atol=5e-3):  # 5e-3: fp16 tables pass
            return None
        sizes.append(denominator + 1)
    height, width = sizes
    return height if height == width else (0, height, width)


def _first(value: int | list[int]) -> int:
    return value[0] if isinstance(value, (list, tuple)) else value


def _require(state_dict: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in state_dict:
        raise CheckpointError(f"{key} is missing: not a complete SwinV2 state dict")
    return state_dict[key]
