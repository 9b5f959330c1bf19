"""Windows along a whole video, for ``videoswinv2 timeline`` (placed by
:func:`~videoswinv2.data.clip_planning.plan_windows`): frames are decoded once, in order, resized
(and cropped) as they come and kept only while a window needs them, so memory holds about one
window's frames whatever the video's length.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from videoswinv2.data.clip_planning import ClipSpec, plan_windows, window_times
from videoswinv2.data.clip_reading import read_clips
from videoswinv2.data.decoding import DecoderName, open_video
from videoswinv2.data.transforms import as_video, normalize, three_crop_views, three_crop_windows
from videoswinv2.data.view_stream import Finished, Item, WindowSpan
from videoswinv2.data.views import clip_spec
from videoswinv2.record import EvalViews

CROP_CHOICES = (1, 3)


@dataclass(frozen=True)
class TimelineSpec:
    """Windows of ``clip`` every ``stride_s`` seconds; frames resized to ``short_side``, then the
    centre ``crop_size`` square (``crops=1``) or the three squares along the long side (``crops=3``,
    as test views); decoded on ``device``."""

    clip: ClipSpec
    stride_s: float
    short_side: int = 224
    crop_size: int = 224
    crops: int = 1
    decoder: DecoderName = "pyav"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.stride_s > 0:
            raise ValueError(f"the stride must be a positive number of seconds, got {self.stride_s}")
        if self.crops not in CROP_CHOICES:
            raise ValueError(f"crops must be 1 or 3, got {self.crops}")

    @classmethod
    def from_views(
        cls, views: EvalViews, stride_s: float, crops: int = 1, device: str = "cpu"
    ) -> TimelineSpec:
        """The clip, sizes and decoder of a model's evaluation views."""
        return cls(
            clip_spec(views), stride_s, views.short_side, views.crop_size, crops, views.decoder, device
        )


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

    @property
    def device(self) -> str:
        return self.spec.device

    def failure_item(self) -> Item:
        return Item(self.video, self.spec.crops)

    def finished(self) -> Finished:
        return Finished(self.video, self.part, self.parts)

    def _transform(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, H, W, 3)`` uint8 (short side resized while decoding) -> ``(N, 3, h, w)`` uint8,
        centre crop if one crop (a frame is cropped as soon as it is decoded: the buffer holds
        crops, not frames)."""
        resized = as_video(frames).as_subclass(torch.Tensor)
        if self.spec.crops == 3:
            return resized
        top, left = three_crop_windows(*resized.shape[-2:], self.spec.crop_size)[1]
        return resized[..., top : top + self.spec.crop_size, left : left + self.spec.crop_size].clone()

    def window_views(self, frames: torch.Tensor) -> torch.Tensor:
        """A window's frames ``(T, 3, h, w)`` uint8 (centre crops with one crop) ->
        ``(crops, 3, T, crop, crop)`` float, normalised."""
        if self.spec.crops == 1:
            return normalize(frames)[None]
        return three_crop_views(frames, self.spec.crop_size)

    def __iter__(self) -> Iterator[tuple[Item, torch.Tensor]]:
        spec = self.spec
        with open_video(self.video, spec.decoder, short_side=spec.short_side, device=spec.device) as reader:
            total, fps = reader.num_frames, reader.fps
            windows = plan_windows(total, fps, spec.clip, spec.stride_s)
            first, last = len(windows) * self.part // self.parts, len(windows) * (self.part + 1) // self.parts
            todo = [k for k in range(first, last) if k not in self.skip]
            if not todo:
                return
            chosen = [windows[k] for k in todo]
            for k, frames in zip(todo, read_clips(reader, chosen, self._transform, stream=True)):
                span = WindowSpan(k, *window_times(windows[k], fps, total, spec.clip))
                yield Item(self.video, spec.crops, window=span), self.window_views(frames)


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
