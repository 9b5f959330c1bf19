"""Which frames make a clip: pure functions of (frames in the video, fps, clip settings).

A clip is ``num_frames`` frames taken every ``frame_interval`` frames. With ``target_fps`` set,
the interval is counted at that frame rate instead, so clips span the same time whatever the
video's own rate (a 2-frame interval at 30 fps becomes 1.67 frames on a 25 fps video, rounded
per frame). Frames past the end of a video shorter than a clip repeat its last frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClipSpec:
    """``num_frames`` frames, one every ``frame_interval`` frames (at ``target_fps`` if given)."""

    num_frames: int = 32
    frame_interval: int = 2
    target_fps: float | None = None

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.frame_interval < 1:
            raise ValueError(f"num_frames and frame_interval must be >= 1, got {self}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ValueError(f"target_fps must be positive, got {self.target_fps}")

    def offsets(self, fps: float) -> list[int]:
        """Frame offsets of a clip from its first frame, for a video at ``fps``."""
        step = float(self.frame_interval)
        if self.target_fps is not None:
            if fps <= 0:
                raise ValueError("target_fps needs the video's frame rate, which is unknown")
            step *= fps / self.target_fps
        # Half-way offsets round up (Python's round() would send 2.5 to 2 but 3.5 to 4).
        return [math.floor(i * step + 0.5) for i in range(self.num_frames)]

    def span(self, fps: float) -> int:
        """Frames from a clip's first to its last frame, both included."""
        return self.offsets(fps)[-1] + 1


def _clip_at(start: int, offsets: list[int], total: int) -> list[int]:
    return [min(start + offset, total - 1) for offset in offsets]


def _check_total(total: int) -> None:
    if total < 1:
        raise ValueError(f"a video needs at least one frame, got {total}")


def train_clip(total: int, fps: float, spec: ClipSpec, generator: torch.Generator | None = None) -> list[int]:
    """One clip at a uniformly random start in ``[0, total - span]``."""
    _check_total(total)
    offsets = spec.offsets(fps)
    last_start = max(total - (offsets[-1] + 1), 0)
    start = int(torch.randint(last_start + 1, (1,), generator=generator))
    return _clip_at(start, offsets, total)


def train_clips(
    total: int, fps: float, spec: ClipSpec, count: int, generator: torch.Generator | None = None
) -> list[list[int]]:
    """``count`` random training clips of one video, to be decoded together.

    One clip is :func:`train_clip`. Several share a random phase of the frame interval (their
    starts differ by multiples of it) when the interval is a whole number of frames: their
    frames then lie on one evenly spaced grid, each clip is a slice of it, and the decoded grid
    serves every clip without copying frames. Each start stays uniform over the starts of its
    phase, and every phase is equally likely.
    """
    offsets = spec.offsets(fps)
    step = offsets[1] - offsets[0] if len(offsets) > 1 else 1
    if count == 1 or offsets != list(range(0, step * len(offsets), step)):
        return [train_clip(total, fps, spec, generator) for _ in range(count)]
    _check_total(total)
    last_start = max(total - (offsets[-1] + 1), 0)
    phase = int(torch.randint(min(step, last_start + 1), (1,), generator=generator))
    starts = phase + step * torch.randint((last_start - phase) // step + 1, (count,), generator=generator)
    return [_clip_at(int(start), offsets, total) for start in starts]


def center_clip(total: int, fps: float, spec: ClipSpec) -> list[int]:
    """The clip centred in the video (start ``(total - span) // 2``)."""
    _check_total(total)
    offsets = spec.offsets(fps)
    return _clip_at(max(total - (offsets[-1] + 1), 0) // 2, offsets, total)


def spread_clips(total: int, fps: float, spec: ClipSpec, num_clips: int) -> list[list[int]]:
    """``num_clips`` clips with starts spread evenly from the first to the last possible start.

    This is PySlowFast's evaluation spacing (``use_offset=True``) with exact end points: clip
    ``i`` starts at ``i * (total - span) // (num_clips - 1)``, so the first clip starts at frame
    0 and the last one ends on the last frame. A single clip is the centre clip.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if num_clips == 1:
        return [center_clip(total, fps, spec)]
    _check_total(total)
    offsets = spec.offsets(fps)
    last_start = max(total - (offsets[-1] + 1), 0)
    return [_clip_at(i * last_start // (num_clips - 1), offsets, total) for i in range(num_clips)]
