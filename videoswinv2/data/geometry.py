"""``ClipGeometry``: the clips a data module gives the model, which the CLI links into the model
(as ``num_classes``) so that it can check them against its patch and windows when a run starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClipGeometry:
    """Frames per clip and the square crop side of each split's clips (None: no such split)."""

    num_frames: int
    train_crop_size: int
    val_crop_size: int | None = None
    test_crop_size: int | None = None

    def clip_size(self, split: str) -> tuple[int, int, int] | None:
        """``(T, H, W)`` of the clips of ``split`` (train, val or test); None without that split."""
        crop = {"train": self.train_crop_size, "val": self.val_crop_size, "test": self.test_crop_size}[split]
        return None if crop is None else (self.num_frames, crop, crop)

    @classmethod
    def of(cls, data: Any) -> ClipGeometry | None:
        """The geometry a data module states (``VideoDataModule.clip_geometry``); None for others."""
        return getattr(data, "clip_geometry", None)
