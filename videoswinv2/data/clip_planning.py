"""Which frames make a clip: pure functions of (frames in the video, fps, clip settings); random
ones take an optional ``torch.Generator``.

A clip is ``num_frames`` frames taken every ``frame_interval`` frames (the Kinetics recipe),
counted at ``target_fps`` if set so that clips span the same time whatever the video's rate (2
frames at 30 fps are 1.67 at 25 fps, rounded per frame). Frames past the end of a short video
repeat its last frame (``short_video="repeat_last"``) or start over (``"loop"``, mmaction's).
``sampling="segments"`` (Video Swin's SSv2 ``frame_uniform``) instead takes one frame of each of
``num_frames`` equal segments of the whole video: a random one in training, the middle one else.

Timeline windows start every ``stride_s`` seconds: window ``i`` at frame ``floor(i * stride_s *
fps + 0.5)``, covering ``[start / fps, (start + span) / fps)``. They are placed while a whole one
fits, plus one ending on the last frame if frames remain; a video shorter than one window gives a
single window from frame 0 that repeats its last frame and ends at the video's end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

Sampling = Literal["interval", "segments"]
ShortVideo = Literal["repeat_last", "loop"]
ClipPlacement = Literal["uniform", "segment_centres"]

SAMPLINGS: tuple[str, ...] = ("interval", "segments")
SHORT_VIDEOS: tuple[str, ...] = ("repeat_last", "loop")
CLIP_PLACEMENTS: tuple[str, ...] = ("uniform", "segment_centres")


@dataclass(frozen=True)
class ClipSpec:
    """``num_frames`` frames, one every ``frame_interval`` frames (at ``target_fps`` if given), or
    one per segment of the video with ``sampling="segments"``; ``short_video`` says what fills a
    clip longer than its video."""

    num_frames: int = 32
    frame_interval: int = 2
    target_fps: float | None = None
    sampling: Sampling = "interval"
    short_video: ShortVideo = "repeat_last"

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.frame_interval < 1:
            raise ValueError(f"num_frames and frame_interval must be >= 1, got {self}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ValueError(f"target_fps must be positive, got {self.target_fps}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.short_video not in SHORT_VIDEOS:
            raise ValueError(f"short_video must be one of {SHORT_VIDEOS}, got {self.short_video!r}")

    def step(self, fps: float) -> float:
        """Frames of a video at ``fps`` between consecutive clip frames."""
        if self.target_fps is None:
            return float(self.frame_interval)
        if fps <= 0:
            raise ValueError("target_fps needs the video's frame rate, which is unknown")
        return self.frame_interval * fps / self.target_fps

    def offsets(self, fps: float) -> list[int]:
        """Frame offsets of a clip from its first frame, for a video at ``fps``."""
        step = self.step(fps)
        # Half-way offsets round up (Python's round() would send 2.5 to 2 but 3.5 to 4).
        return [math.floor(i * step + 0.5) for i in range(self.num_frames)]

    def span(self, fps: float) -> int:
        """Frames from a clip's first to its last frame, both included."""
        return self.offsets(fps)[-1] + 1


def _clip_at(start: int, offsets: list[int], total: int, spec: ClipSpec) -> list[int]:
    if spec.short_video == "loop":
        return [(start + offset) % total for offset in offsets]
    return [min(start + offset, total - 1) for offset in offsets]


def _check_total(total: int) -> None:
    if total < 1:
        raise ValueError(f"a video needs at least one frame, got {total}")


def _check_interval(spec: ClipSpec, what: str) -> None:
    if spec.sampling != "interval":
        raise ValueError(f"{what} places interval clips; segment sampling covers the whole video in one clip")


# -- segments (Video Swin's frame_uniform) --------------------------------------------------------


def _segments(total: int, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last frame of each of ``num_frames`` equal segments of a ``total``-frame video,
    both included: ``round((total - 1) / num_frames * i)`` to ``... * (i + 1)`` (neighbours share
    their boundary frame), rounded half to even as NumPy rounds in Video Swin's code."""
    _check_total(total)
    size = (total - 1) / num_frames
    bounds = torch.tensor([round(size * i) for i in range(num_frames + 1)])
    return bounds[:-1], bounds[1:]


def random_segment_clip(total: int, num_frames: int, generator: torch.Generator | None = None) -> list[int]:
    """One frame drawn uniformly from each of ``num_frames`` equal segments of the video."""
    first, last = _segments(total, num_frames)
    draws = torch.rand(num_frames, dtype=torch.float64, generator=generator)
    return (first + (draws * (last - first + 1)).long()).tolist()


def center_segment_clip(total: int, num_frames: int) -> list[int]:
    """The middle frame of each of ``num_frames`` equal segments: ``(first + last) // 2``."""
    first, last = _segments(total, num_frames)
    return ((first + last) // 2).tolist()


# -- training and validation ----------------------------------------------------------------------


def train_clip(total: int, fps: float, spec: ClipSpec, generator: torch.Generator | None = None) -> list[int]:
    """One clip at a uniformly random start in ``[0, total - span]`` (or, with segment sampling,
    :func:`random_segment_clip`)."""
    if spec.sampling == "segments":
        return random_segment_clip(total, spec.num_frames, generator)
    _check_total(total)
    offsets = spec.offsets(fps)
    last_start = max(total - (offsets[-1] + 1), 0)
    start = int(torch.randint(last_start + 1, (1,), generator=generator))
    return _clip_at(start, offsets, total, spec)


def train_clips(
    total: int, fps: float, spec: ClipSpec, count: int, generator: torch.Generator | None = None
) -> list[list[int]]:
    """``count`` random training clips of one video, to be decoded together. With a whole-frame
    interval they share a random phase of it, so their frames lie on one grid that serves every
    clip without copies; each start stays uniform over its phase's, every phase equally likely."""
    offsets = spec.offsets(fps)
    step = offsets[1] - offsets[0] if len(offsets) > 1 else 1
    grid = spec.sampling == "interval" and offsets == list(range(0, step * len(offsets), step))
    if count == 1 or not grid:
        return [train_clip(total, fps, spec, generator) for _ in range(count)]
    _check_total(total)
    last_start = max(total - (offsets[-1] + 1), 0)
    phase = int(torch.randint(min(step, last_start + 1), (1,), generator=generator))
    starts = phase + step * torch.randint((last_start - phase) // step + 1, (count,), generator=generator)
    return [_clip_at(int(start), offsets, total, spec) for start in starts]


def center_clip(total: int, fps: float, spec: ClipSpec) -> list[int]:
    """The clip centred in the video (start ``(total - span) // 2``; with segment sampling,
    :func:`center_segment_clip`)."""
    if spec.sampling == "segments":
        return center_segment_clip(total, spec.num_frames)
    _check_total(total)
    offsets = spec.offsets(fps)
    return _clip_at(max(total - (offsets[-1] + 1), 0) // 2, offsets, total, spec)


# -- multi-clip evaluation ------------------------------------------------------------------------


def spread_clips(total: int, fps: float, spec: ClipSpec, num_clips: int) -> list[list[int]]:
    """``num_clips`` clips starting at ``i * (total - span) // (num_clips - 1)``: from frame 0 to
    the last possible start (PySlowFast's ``use_offset=True`` spacing); one clip is the centre's."""
    _check_interval(spec, "spread_clips")
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if num_clips == 1:
        return [center_clip(total, fps, spec)]
    _check_total(total)
    offsets = spec.offsets(fps)
    last_start = max(total - (offsets[-1] + 1), 0)
    return [_clip_at(i * last_start // (num_clips - 1), offsets, total, spec) for i in range(num_clips)]


def segment_centred_clips(total: int, fps: float, spec: ClipSpec, num_clips: int) -> list[list[int]]:
    """``num_clips`` clips starting at the centres of equal parts of the video (mmaction 0.x's test
    sampling, which Video Swin's numbers used): with ``L = num_frames * step`` and ``a = (total -
    L + 1) / num_clips``, clip ``i`` starts at ``int(a * i + a / 2)``, or 0 when ``total < L``."""
    _check_interval(spec, "segment_centred_clips")
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    _check_total(total)
    offsets = spec.offsets(fps)
    length = spec.num_frames * spec.step(fps)
    average = (total - length + 1) / num_clips
    starts = [int(i * average + average / 2) if total > length - 1 else 0 for i in range(num_clips)]
    return [_clip_at(start, offsets, total, spec) for start in starts]


def evaluation_clips(
    total: int, fps: float, spec: ClipSpec, num_clips: int, placement: ClipPlacement = "uniform"
) -> list[list[int]]:
    """The test clips of a video: :func:`spread_clips` (``placement="uniform"``) or
    :func:`segment_centred_clips` (``"segment_centres"``); with segment sampling, the one
    :func:`center_segment_clip` (``num_clips`` must then be 1)."""
    if placement not in CLIP_PLACEMENTS:
        raise ValueError(f"test clip placement must be one of {CLIP_PLACEMENTS}, got {placement!r}")
    if spec.sampling == "segments":
        if num_clips != 1:
            raise ValueError(
                f"segment sampling takes its frames from the whole video, so one test clip: got "
                f"num_test_clips {num_clips}, set it to 1"
            )
        return [center_segment_clip(total, spec.num_frames)]
    if placement == "segment_centres":
        return segment_centred_clips(total, fps, spec, num_clips)
    return spread_clips(total, fps, spec, num_clips)


# -- timeline windows ----------------------------------------------------------------------------


def plan_windows(total: int, fps: float, clip: ClipSpec, stride_s: float) -> list[list[int]]:
    """Frame indices of each timeline window of a ``total``-frame video at ``fps`` (see the
    module docstring); a ``ValueError`` for an unknown frame rate or a stride under one frame."""
    if total < 1:
        raise ValueError("the video has no frames")
    if not fps > 0:
        raise ValueError("the frame rate is unknown, so windows cannot be placed in seconds")
    stride = stride_s * fps
    if stride < 1:
        raise ValueError(f"a stride of {stride_s:g} s is shorter than one frame at {fps:g} fps")
    offsets = clip.offsets(fps)
    span = offsets[-1] + 1
    starts: list[int] = []
    while (start := math.floor(len(starts) * stride + 0.5)) + span <= total:
        starts.append(start)
    if not starts:
        starts = [0]
    elif starts[-1] + span < total:
        starts.append(total - span)
    return [[min(start + offset, total - 1) for offset in offsets] for start in starts]


def window_times(frames: Sequence[int], fps: float, total: int, clip: ClipSpec) -> tuple[float, float]:
    """``(start_s, end_s)`` of a window whose frames are ``frames``."""
    return frames[0] / fps, min(frames[0] + clip.span(fps), total) / fps
