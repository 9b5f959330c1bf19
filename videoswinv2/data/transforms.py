"""Clip transforms on uint8 frames, ending in Video Swin normalisation: decoders give ``(T, H, W,
C)`` uint8, the transforms work on its ``(T, C, H, W)`` view (channels-last in memory, where
torchvision's uint8 antialiased resize is ~2.5x faster) and return ``(C, T, H, W)`` float32.
:func:`mirrored_classes` says what a horizontal flip does to class labels."""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from einops import rearrange
from torchvision import tv_tensors
from torchvision.transforms import v2

from videoswinv2.record import INPUT_MEAN, INPUT_STD

_SCALE = torch.tensor([1.0 / s for s in INPUT_STD]).view(3, 1, 1, 1)
_SHIFT = torch.tensor([-m / s for m, s in zip(INPUT_MEAN, INPUT_STD, strict=True)]).view(3, 1, 1, 1)
_SIDE = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def as_video(frames: torch.Tensor) -> tv_tensors.Video:
    """``(T, H, W, C)`` uint8 decoder output -> ``(T, C, H, W)`` Video view (no copy)."""
    return tv_tensors.Video(rearrange(frames, "t h w c -> t c h w"))


def normalize(clip: torch.Tensor) -> torch.Tensor:
    """``(..., T, C, H, W)`` uint8 -> ``(..., C, T, H, W)`` float32, Video Swin mean/std, in one
    fused multiply-add from the transposed view (~3x faster than ``v2.ToDtype`` + ``v2.Normalize``
    + a transpose, ~1.2x than converting a transposed copy in place)."""
    clip = clip.as_subclass(torch.Tensor).transpose(-4, -3)
    out = torch.empty(clip.shape, device=clip.device)
    return torch.addcmul(_SHIFT.to(clip.device), clip, _SCALE.to(clip.device), out=out)


class TrainTransform:
    """Random resized crop (area ``scale``, aspect ``ratio``), horizontal flip, optional
    RandAugment and random erasing, normalisation, the same on every frame: ``(T, H, W, C)`` uint8
    -> ``(C, T, crop, crop)`` float. (Video Swin resizes to 256 first; the crop is relative, so
    cropping the decoded frames selects the same region with one resize instead of two.)

    ``random_erasing``: the probability of erasing one box (area ``random_erasing_area`` of the
    crop, aspect 0.3 to 3.3), the same box on every frame, so the motion around it stays intact.
    """

    def __init__(
        self,
        crop_size: int = 224,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        rand_augment: bool = False,
        rand_augment_ops: int = 2,
        rand_augment_magnitude: int = 9,
        random_erasing: float = 0.0,
        random_erasing_area: tuple[float, float] = (0.02, 1 / 3),
    ) -> None:
        self.crop = v2.RandomResizedCrop(crop_size, scale, ratio, antialias=True)
        self.flip = flip
        self.rand_augment = v2.RandAugment(rand_augment_ops, rand_augment_magnitude) if rand_augment else None
        # Video Swin erases after normalising, filling with 0 (timm's "const" mode): the mean colour.
        # Filling the uint8 frames with the rounded mean is the same up to rounding, and torchvision
        # erases a Video's frames in one box (its kernel slices [..., H, W]).
        mean = [round(m) for m in INPUT_MEAN]
        self.erase = (
            v2.RandomErasing(random_erasing, random_erasing_area, (0.3, 1 / 0.3), value=mean)
            if random_erasing > 0
            else None
        )

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return self.apply(frames)[0]

    def apply(self, frames: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The transformed clip, and whether it was flipped (which may change its label)."""
        clip = self.crop(as_video(frames))
        # Drawn as v2.RandomHorizontalFlip draws it, so the random stream is the same.
        flipped = self.flip and bool(torch.rand(1) < 0.5)
        if flipped:
            clip = v2.functional.horizontal_flip(clip)
        if self.rand_augment is not None:
            clip = self.rand_augment(clip)
        if self.erase is not None:
            clip = self.erase(clip)
        return normalize(clip), flipped


def mirrored_classes(classes: Sequence[str]) -> tuple[dict[int, int], list[str]]:
    """What a horizontal flip does to labels, from the class names: ``{i: j}`` where name ``j`` is
    name ``i`` with the whole words "left" and "right" exchanged (case kept: "Left" <-> "Right"),
    both ways; and the names that say left or right but have no such mirror (their label stays)."""
    index = {name: i for i, name in enumerate(classes)}
    mirror, unpaired = {}, []
    for i, name in enumerate(classes):
        if not _SIDE.search(name):
            continue
        j = index.get(_SIDE.sub(_other_side, name))
        if j is None:
            unpaired.append(name)
        else:
            mirror[i] = j
    return mirror, unpaired


def _other_side(word: re.Match[str]) -> str:
    """The other side: left -> right and back, in the word's case (left, Left, LEFT)."""
    text = word.group()
    other = "right" if text.lower() == "left" else "left"
    return other.upper() if text.isupper() else other.capitalize() if text[0].isupper() else other


class EvalTransform:
    """Short side to ``short_side``, centre crop: ``(T, H, W, C)`` uint8 -> ``(C, T, crop, crop)``
    float."""

    def __init__(self, short_side: int = 256, crop_size: int = 224) -> None:
        self.transform = v2.Compose([v2.Resize(short_side, antialias=True), v2.CenterCrop(crop_size)])

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return normalize(self.transform(as_video(frames)))


def three_crop_windows(height: int, width: int, crop_size: int) -> list[tuple[int, int]]:
    """``(top, left)`` of three square crops at the start, centre and end of the long side (left /
    centre / right, or top / centre / bottom for portrait frames), centred on the short side."""
    if min(height, width) < crop_size:
        raise ValueError(f"frames of {height}x{width} are smaller than the {crop_size} px crop")
    portrait = height > width
    long_side, short_side = (height, width) if portrait else (width, height)
    across = (short_side - crop_size) // 2
    alongs = (0, (long_side - crop_size) // 2, long_side - crop_size)
    return [(along, across) if portrait else (across, along) for along in alongs]


def three_crop_views(clip: torch.Tensor, crop_size: int) -> torch.Tensor:
    """A clip's three square crops (:func:`three_crop_windows`), normalised: ``(T, C, H, W)``
    uint8 -> ``(3, C, T, crop, crop)`` float32, each view written straight into the output (~1.6x
    faster than stacking uint8 crops and normalising the stack)."""
    windows = three_crop_windows(*clip.shape[-2:], crop_size)
    source = rearrange(clip.as_subclass(torch.Tensor), "t c h w -> c t h w").contiguous()
    out = torch.empty(len(windows), *source.shape[:2], crop_size, crop_size, device=clip.device)
    for k, (top, left) in enumerate(windows):
        out[k].copy_(source[..., top : top + crop_size, left : left + crop_size])
    return torch.addcmul(_SHIFT.to(clip.device), out, _SCALE.to(clip.device), out=out)


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(H', W')`` of a ``height x width`` frame resized to ``short_side`` (torchvision's rounding)."""
    long_side = int(short_side * max(height, width) / min(height, width))
    return (short_side, long_side) if height <= width else (long_side, short_side)


def resize_short_side(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """``(T, H, W, C)`` uint8 -> ``(T, C, H', W')`` uint8 with ``min(H', W') == short_side``."""
    return v2.functional.resize(as_video(frames), [short_side], antialias=True)
