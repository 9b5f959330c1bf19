"""The data layer's side of :class:`~videoswinv2.record.EvalViews` (the record holds the fields):
the clip each view is cut from, and the check of the names it holds (decoder, sampling,
placement) against what this layer can read. Reading a video by its views is
:func:`~videoswinv2.data.view_stream.view_clips`.
"""

from __future__ import annotations

from videoswinv2.data.clip_planning import ClipSpec, evaluation_clips
from videoswinv2.data.decoding import check_decoder
from videoswinv2.record import EvalViews


def clip_spec(views: EvalViews) -> ClipSpec:
    """The clip of each view."""
    return ClipSpec(
        views.num_frames, views.frame_interval, views.target_fps, views.sampling, views.short_video
    )


def check_views(views: EvalViews) -> EvalViews:
    """``views``, once its decoder can decode here (a ``UsageError`` otherwise) and its sampling
    and placement names are known ones (ValueError)."""
    check_decoder(views.decoder)
    evaluation_clips(1, 30.0, clip_spec(views), views.num_clips, views.clip_placement)  # checks the rest
    return views
