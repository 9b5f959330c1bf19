"""``Preemption``: a fit told to stop (SIGTERM, SLURM's warning before a time limit, Ctrl-C) saves
the step it is at and exits cleanly; on SLURM the warning also requeues the job."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Checkpoint

log = logging.getLogger(__name__)


class Preemption(Checkpoint):
    """SIGTERM, SIGUSR1 (SLURM's time-limit warning, or ``SLURMEnvironment(requeue_signal=...)``)
    and Ctrl-C make a fit finish its training step, write ``last.ckpt`` beside the other
    checkpoints and exit with 128 + the signal's number; ``fit --ckpt_path last`` continues from
    that step. On SLURM the time-limit signal also requeues the job unless
    ``SLURMEnvironment(auto_requeue=False)``; SIGTERM never does. A second Ctrl-C, or one before
    the first step, exits at once, saving nothing. One of the trainer's default callbacks.

    Lightning's own handlers are replaced for the fit: its SIGUSR1 handler saves from inside the
    signal handler, mid-step (the data position a batch ahead of the weights). A signal during an
    epoch's last step or its validation is acted on at the epoch's end, so a resumed run is not
    owed a validation. It is a ``Checkpoint`` callback so that Lightning runs its epoch-end hook
    with the checkpoint callbacks, after those before it (the CLI puts it last): the epoch's best
    checkpoint is written, and recorded in the state it saves, before it saves (a plain callback
    would save first, and the resumed run would forget the best epoch).
    """

    def __init__(self) -> None:
        self._received: int | None = None
        self._training = False
        self._interrupt_handler: Any = None  # the SIGINT handler before the run's

    def _environment(self, trainer: pl.Trainer) -> Any:
        # Lightning's own signal handling reads the cluster environment from here too.
        return getattr(trainer._accelerator_connector, "cluster_environment", None)

    def _requeue_signal(self, trainer: pl.Trainer) -> int:
        environment = self._environment(trainer)
        return getattr(environment, "requeue_signal", None) or signal.SIGUSR1

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Ctrl-C from here on is ours: Lightning's own handling would exit 1, saving nothing.
        self._received, self._training = None, False
        if _main_thread():
            self._interrupt_handler = signal.signal(signal.SIGINT, self._note)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Installed after Lightning's handlers (which the Trainer registers before this hook).
        self._training = True
        if not _main_thread():
            return  # only the main thread may set handlers (Lightning skips them there too)
        for signum in {signal.SIGTERM, self._requeue_signal(trainer)}:
            signal.signal(signum, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and (self._received == signal.SIGINT or not self._training):
            print("\ninterrupted" + (": nothing saved" if self._training else ""), file=sys.stderr)
            raise SystemExit(128 + signal.SIGINT)
        if signum == signal.SIGINT:
            print("\nCtrl-C: saving at the end of this step (Ctrl-C again exits at once)", file=sys.stderr)
        self._received = signum

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the epoch's validation and checkpoints come first: on_train_epoch_end acts
        self._stop_if_told(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_if_told(trainer)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if _main_thread() and self._interrupt_handler is not None:
            signal.signal(signal.SIGINT, self._interrupt_handler)
            self._interrupt_handler = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.teardown(trainer, pl_module, "")

    def _stop_if_told(self, trainer: pl.Trainer) -> None:
        # A SIGTERM from before on_train_start was seen by Lightning's handler.
        received = self._received or (signal.SIGTERM if trainer.received_sigterm else None)
        # Every rank must save and stop at the same step, whichever ranks got the signal.
        if not trainer.strategy.reduce_boolean_decision(received is not None, all=False):
            return
        signum = signal.Signals(received or signal.SIGTERM)
        path = self._checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)  # the whole state (None would log a line)
        if trainer.is_global_zero:
            then = "run the same command with --ckpt_path last to continue"
            if signum == self._requeue_signal(trainer) and self._requeue(trainer):
                then = f"requeued SLURM job {_slurm_job_id()}, which continues from it"
            log.warning(
                "%s: saved epoch %d, step %d to %s; %s",
                "interrupted" if signum == signal.SIGINT else signum.name,
                trainer.current_epoch,
                trainer.global_step,
                path,
                then,
            )
        raise SystemExit(128 + signum)

    @staticmethod
    def _checkpoint_path(trainer: pl.Trainer) -> Path:
        callback = trainer.checkpoint_callback
        folder = getattr(callback, "dirpath", None)
        if folder is None:
            folder = Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"
        return Path(folder) / "last.ckpt"

    def _requeue(self, trainer: pl.Trainer) -> bool:
        environment = self._environment(trainer)
        if not isinstance(environment, SLURMEnvironment) or not environment.auto_requeue:
            return False
        try:
            result = subprocess.run(["scontrol", "requeue", _slurm_job_id()], capture_output=True, text=True)
        except FileNotFoundError:
            log.warning("scontrol is not on the PATH: SLURM job %s was not requeued", _slurm_job_id())
            return False
        if result.returncode != 0:
            log.warning("scontrol requeue %s failed: %s", _slurm_job_id(), result.stderr.strip())
        return result.returncode == 0


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _slurm_job_id() -> str:
    """The job to requeue; an array task is ``ARRAYJOB_TASK``."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job is not None:
        return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ["SLURM_JOB_ID"]
