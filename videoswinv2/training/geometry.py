"""``ClipGeometry``: the clips the data gives the model, linked by the CLI from the data module
as ``num_classes`` is."""

from __future__ import annotations

from dataclasses import dataclass

import lightning.pytorch as pl

from videoswinv2.data import KineticsDataModule


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
    def of(cls, data: pl.LightningDataModule) -> ClipGeometry | None:
        """A ``KineticsDataModule``'s (or subclass's) clips; None for another data module."""
        if not isinstance(data, KineticsDataModule):
            return None
        h = data.hparams
        return cls(
            h.num_frames,
            h.train_crop_size,
            h.val_crop_size if h.val_annotations else None,
            h.test_crop_size if h.test_annotations else None,
        )
