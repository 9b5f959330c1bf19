"""Running a model over videos: Lightning's ``Trainer.predict`` with a writer callback."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
from collections.abc import Iterator, Sequence

import lightning.pytorch as pl
import torch

from videoswinv2.data.view_stream import Task, VideoListData
from videoswinv2.inference.precision import LIGHTNING_PRECISION
from videoswinv2.inference.writers import ResultWriter
from videoswinv2.training.module import VideoClassifier


def resolve_accelerator(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other names pass through."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Have this process reuse the memory its tensors free instead of giving it back (glibc only):
    glibc unmaps freed blocks over 32 MB, so every CPU forward faults the pages of its large
    activations in anew (~20% of a bf16 forward, tiny, 32x224). With mmap off and trimming at 2 GB
    the process (and workers it forks later) keeps its peak memory until it ends. Returns whether
    glibc took both settings (False elsewhere: musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def default_batch_size(accelerator: str) -> int:
    """Views per forward pass: 12 on GPUs; 6 on CPU, where the time per view grows with the batch
    in fp32 (measured on 2 cores, tiny, 32x224 views, with :func:`keep_freed_memory`: 1.54, 1.56
    and 2.05 s per view for batches of 3, 6 and 12; bf16 1.04, 1.00 and 1.02 s)."""
    return 6 if accelerator == "cpu" else 12


def predict_videos(
    module: VideoClassifier,
    tasks: Sequence[Task],
    writer: ResultWriter,
    *,
    batch_size: int | None,
    num_workers: int,
    accelerator: str = "cpu",
    devices: int = 1,
    precision: str = "32",
) -> pl.Trainer:
    """Run ``module`` over the views of ``tasks`` (:mod:`videoswinv2.data.view_stream`), ``writer``
    writing each result; ``batch_size`` counts views per forward (None: :func:`default_batch_size`),
    ``precision`` is ``"32"`` or ``"bf16"``. Returns the trainer (``is_global_zero`` says which
    process reports). Ctrl-C raises ``KeyboardInterrupt`` once the writer has closed its files.
    """
    with _lightning_quiet():  # "GPU available: ..." is noise here
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            strategy="ddp" if devices > 1 else "auto",
            precision=LIGHTNING_PRECISION[precision],
            callbacks=[writer],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,  # the writer's bar counts videos, Lightning's would count batches
            enable_model_summary=False,
            use_distributed_sampler=False,  # the stream shards the videos itself
        )
        data = VideoListData(tasks, batch_size or default_batch_size(accelerator), num_workers)
        handler = signal.getsignal(signal.SIGINT)
        try:
            trainer.predict(module, datamodule=data, return_predictions=False)
        except SystemExit:
            if trainer.interrupted:  # Lightning's answer to Ctrl-C: callbacks told, then exit(1)
                raise KeyboardInterrupt from None
            raise
        finally:
            signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C after the first
        return trainer


@contextlib.contextmanager
def _lightning_quiet() -> Iterator[None]:
    """Lightning's loggers at WARNING while inside; their levels as they were afterwards."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
