"""Callbacks the long-run tests add to CLI runs (``--trainer.callbacks+=tests.long_run_callbacks.X``)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from typing import Any

import lightning.pytorch as pl


class RecordBatches(pl.Callback):
    """Appends one JSON line per training step to ``path``: epoch, batch index, global step after
    the step, the batch's video indices and a hash of its pixels."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        row = {
            "epoch": trainer.current_epoch,
            "batch": batch_idx,
            "step": trainer.global_step,
            "index": batch["index"].tolist(),
            "pixels": hashlib.sha1(batch["video"].cpu().numpy().tobytes()).hexdigest(),
        }
        with open(self.path, "a") as file:
            file.write(json.dumps(row) + "\n")


class SignalAt(pl.Callback):
    """Sends ``signal`` (a name, e.g. "SIGKILL") ``times`` times to this process as training step
    ``step`` starts; with ``group``, to its whole process group, as a terminal's Ctrl-C does."""

    def __init__(self, step: int, signal: str, times: int = 1, group: bool = False) -> None:
        self.step, self.signal, self.times, self.group = step, signal, times, group

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            for _ in range(self.times):
                if self.group:
                    os.killpg(os.getpgid(0), getattr(signal, self.signal))
                else:
                    os.kill(os.getpid(), getattr(signal, self.signal))


class PoisonBatches(pl.Callback):
    """Puts a NaN into the clips of the training steps ``steps`` (global steps, as they start)."""

    def __init__(self, steps: list[int]) -> None:
        self.steps = steps

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step in self.steps:
            batch["video"].view(-1)[0] = float("nan")
