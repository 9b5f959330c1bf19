"""Per-batch seeding: every random draw of a training step (mixup, masks, drop path, dropout)
comes from the global generators, seeded per batch, so that a run resumed mid-epoch draws what
an uninterrupted one does (checkpoints hold no generator state)."""

from __future__ import annotations

import os

import torch

from videoswinv2.data.sampling import derive_seed


def seed_training_step(epoch: int, batch_idx: int, rank: int) -> None:
    """Seed the global generators for one training step; PL_GLOBAL_SEED is seed_everything's."""
    base = int(os.environ.get("PL_GLOBAL_SEED", 0))
    torch.manual_seed(derive_seed(base, epoch, batch_idx, rank))
