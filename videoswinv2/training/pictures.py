"""``ReconstructionPictures``: what masked pretraining sees and rebuilds, as pictures during training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from einops import rearrange
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid, save_image

from videoswinv2.record import INPUT_MEAN, INPUT_STD

# Masked regions are drawn mid-grey.
_MASKED_GREY = 0.5


def to_pixels(clips: torch.Tensor) -> torch.Tensor:
    """Normalised ``(B, C, T, H, W)`` clips back to 0..1 pixels (Video Swin mean and std undone)."""
    mean = clips.new_tensor(INPUT_MEAN).view(1, 3, 1, 1, 1) / 255
    std = clips.new_tensor(INPUT_STD).view(1, 3, 1, 1, 1) / 255
    return (clips * std + mean).clamp(0, 1)


def reconstruction_grid(
    original: torch.Tensor, voxel_mask: torch.Tensor, reconstructed: torch.Tensor, num_frames: int
) -> torch.Tensor:
    """One picture ``(3, H', W')``: per clip, rows of ``num_frames`` evenly spaced original, masked
    and reconstructed frames of normalised ``(B, C, T, H, W)`` clips, voxel mask ``(B, T, H, W)``."""
    frames = torch.linspace(0, original.shape[2] - 1, min(num_frames, original.shape[2])).round().long()
    original, reconstructed = to_pixels(original.float()), to_pixels(reconstructed.float())
    masked = original.masked_fill(voxel_mask.unsqueeze(1), _MASKED_GREY)
    rows = torch.stack([original, masked, reconstructed], dim=1)[:, :, :, frames]  # (B, 3, C, F, H, W)
    tiles = rearrange(rows, "b row c f h w -> (b row f) c h w")
    return make_grid(tiles.cpu(), nrow=len(frames), padding=2, pad_value=1.0)


class ReconstructionPictures(L.Callback):
    """Every ``every_n_steps`` optimiser steps, ``num_clips`` clips of the training batch masked
    afresh and reconstructed (eval mode, no gradients), as the TensorBoard image
    ``reconstructions`` and ``RUN/reconstructions/step_NNNNNNN.png``."""

    def __init__(self, every_n_steps: int = 500, num_clips: int = 2, num_frames: int = 4) -> None:
        if every_n_steps < 1 or num_clips < 1 or num_frames < 1:
            raise ValueError("every_n_steps, num_clips and num_frames must be >= 1")
        self.every_n_steps, self.num_clips, self.num_frames = every_n_steps, num_clips, num_frames
        self._last_step = -1
        self._folder: Path | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Here, on every rank: `trainer.log_dir` is a collective under DDP.
        self._folder = Path(trainer.log_dir or trainer.default_root_dir) / "reconstructions"

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        # With gradient accumulation several batches end at one step: one picture per step.
        if step % self.every_n_steps or step == self._last_step or not trainer.is_global_zero:
            return
        self._last_step = step
        clips = batch["video"][: self.num_clips]
        if len(clips) == 0:
            return
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                result = pl_module.reconstruct(clips, pl_module.random_mask(clips))
                prediction = pl_module.prediction_as_clip(clips, result.prediction)
        finally:
            pl_module.train(was_training)
        mask = result.voxel_mask
        reconstructed = torch.where(mask.unsqueeze(1), prediction, clips.float())
        grid = reconstruction_grid(clips, mask, reconstructed, self.num_frames)
        self._folder.mkdir(parents=True, exist_ok=True)
        save_image(grid, self._folder / f"step_{step:07d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("reconstructions", grid, step)
