"""Training steps whose loss or gradient norm is not finite: kept from the weights
(:class:`NonFiniteGuard`), reported and, in a long run of them, stopped (:class:`NonFiniteSteps`)."""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch

from videoswinv2.distributed import gather_lists
from videoswinv2.errors import WorkFailed

log = logging.getLogger(__name__)


class NonFiniteStepsError(WorkFailed):
    """Too many training steps in a row had a non-finite loss or gradient norm."""


class NonFiniteGuard:
    """bf16 has no GradScaler to skip a step whose gradients overflowed, so the module does:
    :meth:`check`, after backward and before Lightning clips the gradients and steps, drops the
    gradients of a step whose loss or unclipped gradient norm is not finite on any rank, so AdamW
    changes no weight and no moment; the module skips the schedule's step while :attr:`skipped`."""

    def __init__(self) -> None:
        self.skipped: tuple[float, float] | None = None  # (loss, gradient norm) of a skipped step
        self._loss = torch.tensor(0.0)

    def start(self) -> None:
        self.skipped = None

    def note_loss(self, loss: torch.Tensor) -> None:
        self._loss = loss.detach()

    def check(self, module: pl.LightningModule, optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """The step's gradient norm (every rank decides alike)."""
        norm = torch.nn.utils.get_total_norm([p.grad for p in module.parameters() if p.grad is not None])
        finite = bool(torch.isfinite(norm) & torch.isfinite(self._loss))
        if module.trainer.strategy.reduce_boolean_decision(not finite, all=False):
            self.skipped = (float(self._loss), float(norm))
            optimizer.zero_grad(set_to_none=True)  # optimizers step only parameters with gradients
        return norm


class NonFiniteSteps(pl.Callback):
    """Counts the steps the module's ``step_guard`` skipped (``train/skipped_steps``, surviving a
    resume) and warns of each, naming the batch's videos on every rank. After ``max_bad_steps`` in
    a row the fit stops with :class:`NonFiniteStepsError` naming the last one's videos, writing no
    checkpoint (the data position would have moved past the bad batches). One of the trainer's
    default callbacks.
    """

    def __init__(self, max_bad_steps: int = 20) -> None:
        if max_bad_steps < 1:
            raise ValueError(f"max_bad_steps must be >= 1, got {max_bad_steps}")
        self.max_bad_steps = max_bad_steps
        self.total = 0
        self.in_a_row = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        guard = getattr(pl_module, "step_guard", None)  # a module without one skips no step
        skipped = guard.skipped if guard is not None else None
        if skipped is None:
            self.in_a_row = 0
        else:
            self.total += 1
            self.in_a_row += 1
            self._report(trainer, skipped, batch)
        pl_module.log("train/skipped_steps", float(self.total), on_step=True, on_epoch=False)

    def _report(self, trainer: pl.Trainer, skipped: tuple[float, float], batch: Any) -> None:
        # Every rank skipped this step (the decision is reduced over ranks): gather the videos.
        videos = gather_lists(_video_paths(trainer, batch))
        loss, norm = skipped
        where = f"epoch {trainer.current_epoch}, step {trainer.global_step}"
        names = ", ".join(dict.fromkeys(videos))  # each once, in batch order
        if self.in_a_row >= self.max_bad_steps:
            raise NonFiniteStepsError(
                f"{self.in_a_row} training steps in a row had a non-finite loss or gradient norm "
                f"(max_bad_steps={self.max_bad_steps}); stopped at {where}, keeping the last checkpoint "
                f"written before them. The last bad batch's videos: {names}"
            )
        if trainer.is_global_zero:
            log.warning(
                "%s: loss %.4g, gradient norm %.4g: not finite, so this step updated no weight and no "
                "learning rate (%d in a row, %d in all); its videos: %s",
                where,
                loss,
                norm,
                self.in_a_row,
                self.total,
                names,
            )

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "in_a_row": self.in_a_row}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.total, self.in_a_row = state_dict["total"], state_dict["in_a_row"]


def _video_paths(trainer: pl.Trainer, batch: Any) -> list[str]:
    """The batch's videos (its ``index`` into the training dataset's ``videos``), or the indices
    themselves where the dataset does not list paths."""
    indices = batch.get("index") if isinstance(batch, dict) else None
    if indices is None:
        return []
    videos = getattr(getattr(trainer.train_dataloader, "dataset", None), "videos", None)
    indices = list(dict.fromkeys(indices.tolist()))  # clips_per_video repeats each video
    return [videos[i].path if videos is not None else f"index {i}" for i in indices]
