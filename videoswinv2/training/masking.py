"""Masks and the reconstruction loss of masked video modelling, as pure functions.

A mask is drawn over *units*, boxes of ``(t, h, w)`` pixels aligned with the last-stage tokens, so
every token whose pixels the decoder predicts is wholly masked or wholly visible. ``cube`` masks
units at random; ``tube`` the same spatial units in every frame (VideoMAE's tubes: a masked region
cannot be copied from a neighbouring frame).
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange, repeat

from videoswinv2.errors import UsageError

Triple = tuple[int, int, int]
MaskKind = Literal["cube", "tube"]
MASK_KINDS: tuple[str, ...] = ("cube", "tube")


def masked_count(num_units: int, ratio: float) -> int:
    """Units masked out of ``num_units``: ``round(ratio * num_units)``, at least one and at least
    one left visible."""
    return min(max(round(ratio * num_units), 1), num_units - 1)


def check_mask(kind: str, ratio: float) -> None:
    """A clear error for a mask kind or ratio that cannot be drawn."""
    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind must be one of {MASK_KINDS}, got {kind!r}")
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {ratio}")


def mask_cells(grid: Triple, kind: str) -> int:
    """The units a ``kind`` mask chooses from in a ``(t, h, w)`` grid (spatial ones for tubes); a
    ``UsageError`` when there are fewer than 2, which leaves nothing both masked and visible."""
    t, h, w = grid
    cells = h * w if kind == "tube" else t * h * w
    if cells < 2:
        raise UsageError(
            f"a {kind} mask needs at least 2 units to choose from, the clip has {'x'.join(map(str, grid))} "
            "(frames x height x width in mask units): use more frames, larger crops or a smaller mask_unit"
        )
    return cells


def random_unit_mask(
    batch: int,
    grid: Triple,
    ratio: float,
    kind: MaskKind = "cube",
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(B, t, h, w)`` bool over a ``grid`` of units, True where masked: exactly
    :func:`masked_count` units per clip (``cube``), or spatial positions per unit of time (``tube``)."""
    check_mask(kind, ratio)
    t, h, w = grid
    cells = mask_cells(grid, kind)
    count = masked_count(cells, ratio)
    # The `count` smallest of uniform scores: a uniformly random subset of exactly that size.
    order = torch.rand(batch, cells, device=device, generator=generator).argsort(dim=1)
    mask = torch.zeros(batch, cells, dtype=torch.bool, device=order.device)
    mask.scatter_(1, order[:, :count], True)
    if kind == "tube":
        return repeat(mask, "b (h w) -> b t h w", t=t, h=h)
    return mask.view(batch, t, h, w)


def expand_mask(mask: torch.Tensor, factor: Triple) -> torch.Tensor:
    """``(B, t, h, w)`` -> ``(B, t*ft, h*fh, w*fw)``: each entry repeated over a box (units to
    tokens, or to pixels)."""
    ft, fh, fw = factor
    return repeat(mask, "b t h w -> b (t ft) (h fh) (w fw)", ft=ft, fh=fh, fw=fw)


def patch_statistics(clips: torch.Tensor, patch: Triple) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (unbiased) of each channel of each ``patch``-sized box of
    ``(B, C, T, H, W)`` clips, each broadcast back to the clips' shape."""
    pt, ph, pw = patch
    boxes = rearrange(clips, "b c (t pt) (h ph) (w pw) -> b c t h w (pt ph pw)", pt=pt, ph=ph, pw=pw)
    mean, std = boxes.mean(-1, keepdim=True), boxes.std(-1, keepdim=True)
    spread = "b c t h w () -> b c (t pt) (h ph) (w pw)"
    return repeat(mean, spread, pt=pt, ph=ph, pw=pw), repeat(std, spread, pt=pt, ph=ph, pw=pw)


# VideoMAE's epsilon: flat patches (std 0) give targets of 0, not infinities.
PATCH_NORM_EPS = 1e-6


def normalize_patches(clips: torch.Tensor, patch: Triple) -> torch.Tensor:
    """Targets normalised per channel within each ``patch``-sized box (MAE / VideoMAE): the
    loss then weighs the structure of a box, not its brightness. ``(B, C, T, H, W)``, same shape."""
    mean, std = patch_statistics(clips, patch)
    return (clips - mean) / (std + PATCH_NORM_EPS)


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, voxel_mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every channel of the masked voxels only (SimMIM): ``prediction``
    and ``target`` ``(B, C, T, H, W)``, ``voxel_mask`` ``(B, T, H, W)`` bool."""
    weight = voxel_mask.unsqueeze(1).to(prediction.dtype)
    error = (prediction - target).abs() * weight
    return error.sum() / (weight.sum() * prediction.shape[1]).clamp(min=1)
