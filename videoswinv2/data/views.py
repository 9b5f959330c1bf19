"""Reading a video by its :class:`~videoswinv2.record.EvalViews`: the data module's test set,
multi-view validation and ``videoswinv2 predict`` / ``extract-features`` all see a video this way:
N temporal clips spread over the video, each resized to ``short_side`` and cut into three square
crops along the long side, so ``3 * N`` views per video.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from videoswinv2.data.clip_planning import ClipSpec, evaluation_clips
from videoswinv2.data.decoding import DECODERS, open_video
from videoswinv2.data.transforms import resize_short_side, three_crop_views
from videoswinv2.record import EvalViews


def clip_spec(views: EvalViews) -> ClipSpec:
    """The clip of each view."""
    return ClipSpec(
        views.num_frames, views.frame_interval, views.target_fps, views.sampling, views.short_video
    )


def check_views(views: EvalViews) -> EvalViews:
    """``views``, once its decoder, sampling and placement names are known ones (ValueError)."""
    if views.decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {views.decoder!r}")
    evaluation_clips(1, 30.0, clip_spec(views), views.num_clips, views.clip_placement)  # checks the rest
    return views


def decode_views(views: EvalViews, path: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode what the views of ``path`` need, each frame once even where clips overlap.

    Returns the resized frames ``(U, C, H, W)`` uint8 (short side ``short_side``) and the clips as
    indices into them, ``(num_clips, num_frames)``. Raises
    :class:`~videoswinv2.data.decoding.VideoDecodeError` if the video cannot be read.
    """
    with open_video(path, views.decoder) as reader:
        clips = evaluation_clips(
            reader.num_frames, reader.fps, clip_spec(views), views.num_clips, views.clip_placement
        )
        unique = sorted({i for clip in clips for i in clip})
        frames = resize_short_side(reader.read(unique), views.short_side)
    position = {frame: k for k, frame in enumerate(unique)}
    return frames, torch.tensor([[position[i] for i in clip] for clip in clips])


def load_views(views: EvalViews, path: str) -> torch.Tensor:
    """All views of ``path``: ``(V, C, T, crop, crop)`` float, clip-major (clip0-crop0,
    clip0-crop1, clip0-crop2, clip1-crop0, ...), normalised."""
    frames, clips = decode_views(views, path)
    return three_crop_views(frames, clips, views.crop_size)


def iter_clip_views(views: EvalViews, path: str) -> Iterator[torch.Tensor]:
    """The same views as :func:`load_views`, one clip's ``(3, C, T, crop, crop)`` at a time, so
    memory holds the decoded frames and one clip's views whatever ``num_clips`` is."""
    frames, clips = decode_views(views, path)
    for clip in clips:
        yield three_crop_views(frames, clip[None], views.crop_size)
