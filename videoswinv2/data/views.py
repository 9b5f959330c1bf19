"""``EvalViews``: how a video is seen at evaluation time, in one place.

The data module's test set, a checkpoint (through the data module's saved hyper-parameters) and
``videoswinv2 predict`` / ``extract-features`` all build their views from this one dataclass: N
temporal clips spread over the video, each resized to ``short_side`` and cut into three square
crops along the long side, so ``3 * N`` views per video.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from videoswinv2.data.clip_planning import ClipPlacement, ClipSpec, Sampling, ShortVideo, evaluation_clips
from videoswinv2.data.decoding import DECODERS, DecoderName

CROPS_PER_CLIP = 3

# KineticsDataModule's argument -> EvalViews field: the test split's view settings.
_DATAMODULE_ARGUMENTS = {
    "num_test_clips": "num_clips",
    "num_frames": "num_frames",
    "frame_interval": "frame_interval",
    "target_fps": "target_fps",
    "test_short_side": "short_side",
    "test_crop_size": "crop_size",
    "decoder": "decoder",
    "frame_sampling": "sampling",
    "short_video": "short_video",
    "test_clip_placement": "clip_placement",
}


@dataclass(frozen=True)
class EvalViews:
    """``num_clips`` clips of ``num_frames`` frames (one every ``frame_interval``, counted at
    ``target_fps`` if given, or one per segment with ``sampling="segments"``), placed as
    ``clip_placement`` says (see :func:`~videoswinv2.data.clip_planning.evaluation_clips`), short
    side resized to ``short_side``, three ``crop_size`` crops each."""

    num_clips: int = 4
    num_frames: int = 32
    frame_interval: int = 2
    target_fps: float | None = None
    short_side: int = 224
    crop_size: int = 224
    decoder: DecoderName = "pyav"
    sampling: Sampling = "interval"
    short_video: ShortVideo = "repeat_last"
    clip_placement: ClipPlacement = "uniform"

    def __post_init__(self) -> None:
        for name in ("num_clips", "num_frames", "frame_interval", "short_side", "crop_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop_size > self.short_side:
            raise ValueError(f"crop_size {self.crop_size} is larger than short_side {self.short_side}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        evaluation_clips(1, 30.0, self.clip, self.num_clips, self.clip_placement)  # checks the rest

    @property
    def clip(self) -> ClipSpec:
        return ClipSpec(
            self.num_frames, self.frame_interval, self.target_fps, self.sampling, self.short_video
        )

    @property
    def num_views(self) -> int:
        return CROPS_PER_CLIP * self.num_clips

    @classmethod
    def from_datamodule(cls, hparams: Mapping[str, Any]) -> EvalViews:
        """The test views of ``KineticsDataModule`` hyper-parameters (the data module's, or those a
        Lightning checkpoint saved); settings not given take the data module's defaults."""
        from videoswinv2.data.datamodule import KineticsDataModule

        defaults = inspect.signature(KineticsDataModule).parameters
        return cls(
            **{
                ours: hparams.get(theirs, defaults[theirs].default)
                for theirs, ours in _DATAMODULE_ARGUMENTS.items()
            }
        )

    def overridden(self, **changes: Any) -> EvalViews:
        """A copy with the fields in ``changes`` that are not None replaced."""
        known = {f.name for f in fields(self)}
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if v is not None and k in known})
        return EvalViews(**values)
