"""Windows along a whole video, for ``videoswinv2 timeline``: where they fall, and their frames
from one sequential pass over the video.

A window is the model's clip (``num_frames`` frames, one every ``frame_interval``) starting every
``stride_s`` seconds: window ``i`` starts at frame ``floor(i * stride_s * fps + 0.5)`` and covers
``[start_s, end_s)`` = ``[start / fps, (start + span) / fps)``, ``span`` being the frames from its
first to its last frame. Windows are placed while a whole one fits. If frames remain after the
last, one more window ends on the last frame (its start then lies off the stride grid); a video
shorter than one window gives a single window from frame 0 whose missing frames repeat the last
one, as test clips do, and whose ``end_s`` is the video's end.

Frames are decoded once, in order (:meth:`VideoReader.iter_frames`), resized (and centre-cropped)
as they come, and kept only while a window still needs them, so memory holds about one window's
frames whatever the video's length.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from videoswinv2.data.clip_planning import ClipSpec
from videoswinv2.data.decoding import DecoderName, VideoDecodeError, open_video
from videoswinv2.data.transforms import normalize, resize_short_side, three_crop_windows
from videoswinv2.data.view_stream import Finished, Item
from videoswinv2.data.views import clip_spec
from videoswinv2.record import EvalViews

CROP_CHOICES = (1, 3)


@dataclass(frozen=True)
class TimelineSpec:
    """Windows of ``clip`` every ``stride_s`` seconds; frames resized to ``short_side``, then the
    centre ``crop_size`` square (``crops=1``) or the three squares along the long side (``crops=3``,
    as test views)."""

    clip: ClipSpec
    stride_s: float
    short_side: int = 224
    crop_size: int = 224
    crops: int = 1
    decoder: DecoderName = "pyav"

    def __post_init__(self) -> None:
        if not self.stride_s > 0:
            raise ValueError(f"the stride must be a positive number of seconds, got {self.stride_s}")
        if self.crops not in CROP_CHOICES:
            raise ValueError(f"crops must be 1 or 3, got {self.crops}")

    @classmethod
    def from_views(cls, views: EvalViews, stride_s: float, crops: int = 1) -> TimelineSpec:
        """The clip, sizes and decoder of a model's evaluation views."""
        return cls(clip_spec(views), stride_s, views.short_side, views.crop_size, crops, views.decoder)


def plan_windows(total: int, fps: float, clip: ClipSpec, stride_s: float) -> list[list[int]]:
    """Frame indices of each window of a ``total``-frame video at ``fps`` (see the module docstring).

    Raises ``ValueError`` when the frame rate is unknown or the stride is under one frame.
    """
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
    span = clip.offsets(fps)[-1] + 1
    return frames[0] / fps, min(frames[0] + span, total) / fps


def rolling_windows(
    frames: Iterator[tuple[int, torch.Tensor]],
    windows: Sequence[Sequence[int]],
    transform: Callable[[torch.Tensor], torch.Tensor],
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(k, stacked frames of windows[k])`` for every window, in order, from one pass over
    ``frames`` (``(index, frame)`` in increasing index order; windows sorted by their last frame).

    Each needed frame is transformed once and kept only until the last window using it is out.
    Raises :class:`VideoDecodeError` for a frame the decoder skipped or never reached.
    """
    uses = Counter(i for window in windows for i in set(window))
    buffer: dict[int, torch.Tensor] = {}
    pending = 0
    for index, frame in frames:
        if index in uses:
            buffer[index] = transform(frame)
        while pending < len(windows) and windows[pending][-1] <= index:
            window = windows[pending]
            missing = [i for i in window if i not in buffer]
            if missing:
                raise VideoDecodeError(f"the decoder never produced frame {missing[0]}")
            yield pending, torch.stack([buffer[i] for i in window])
            for i in set(window):
                uses[i] -= 1
                if uses[i] == 0:
                    del uses[i]
                    buffer.pop(i, None)
            pending += 1
        if pending == len(windows):
            return
    if pending < len(windows):
        raise VideoDecodeError(f"decoding ended before frame {windows[pending][-1]}")


@dataclass(frozen=True)
class TimelineTask:
    """Part ``part`` of ``parts`` (contiguous runs of windows) of a video's timeline, leaving out
    the windows in ``skip`` (done by an earlier run). Yields each window's ``crops`` views
    ``(crops, C, T, crop, crop)`` with its :class:`Item`."""

    video: str
    spec: TimelineSpec
    part: int = 0
    parts: int = 1
    skip: frozenset[int] = field(default_factory=frozenset)

    def failure_item(self) -> Item:
        return Item(self.video, self.spec.crops)

    def finished(self) -> Finished:
        return Finished(self.video, self.part, self.parts)

    def _transform(self, frame: torch.Tensor) -> torch.Tensor:
        """``(H, W, 3)`` uint8 -> ``(3, h, w)`` uint8: short side resized, centre crop if one crop
        (a frame is cropped as soon as it is decoded: the buffer holds crops, not frames)."""
        resized = resize_short_side(frame[None], self.spec.short_side)[0].as_subclass(torch.Tensor)
        if self.spec.crops == 3:
            return resized
        top, left = three_crop_windows(*resized.shape[-2:], self.spec.crop_size)[1]
        return resized[:, top : top + self.spec.crop_size, left : left + self.spec.crop_size].clone()

    def window_views(self, frames: torch.Tensor) -> torch.Tensor:
        """A window's frames ``(T, 3, h, w)`` uint8 (centre crops with one crop) ->
        ``(crops, 3, T, crop, crop)`` float, normalised."""
        size = self.spec.crop_size
        if self.spec.crops == 1:
            return normalize(frames)[None]
        corners = three_crop_windows(*frames.shape[-2:], size)
        return torch.stack(
            [normalize(frames[..., top : top + size, left : left + size]) for top, left in corners]
        )

    def __iter__(self) -> Iterator[tuple[Item, torch.Tensor]]:
        spec = self.spec
        with open_video(self.video, spec.decoder) as reader:
            total, fps = reader.num_frames, reader.fps
            windows = plan_windows(total, fps, spec.clip, spec.stride_s)
            first, last = len(windows) * self.part // self.parts, len(windows) * (self.part + 1) // self.parts
            todo = [k for k in range(first, last) if k not in self.skip]
            if not todo:
                return
            chosen = [windows[k] for k in todo]
            frames = reader.iter_frames(min(min(w) for w in chosen))
            for position, stacked in rolling_windows(frames, chosen, self._transform):
                k = todo[position]
                start_s, end_s = window_times(windows[k], fps, total, spec.clip)
                yield (
                    Item(self.video, spec.crops, window=k, start_s=start_s, end_s=end_s),
                    self.window_views(stacked),
                )


def timeline_tasks(
    videos: Sequence[str], spec: TimelineSpec, workers: int, skip: dict[str, frozenset[int]] | None = None
) -> list[TimelineTask]:
    """Each video's timeline as one task, or, when there are fewer videos than decoding
    ``workers``, cut into ``workers // len(videos)`` parts so that every worker decodes.
    ``skip``: windows done already, by the video's resolved path (``os.path.realpath``)."""
    parts = max(1, workers // max(len(videos), 1))
    skip = skip or {}
    return [
        TimelineTask(video, spec, part, parts, skip.get(os.path.realpath(video), frozenset()))
        for video in videos
        for part in range(parts)
    ]
