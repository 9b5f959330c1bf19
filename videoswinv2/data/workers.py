"""What DataLoader workers do when a cluster signals the whole job."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

# How long a DataLoader worker lives on after a SIGTERM: enough to finish the batch it is making.
WORKER_SIGTERM_GRACE_S = 10.0


def outlive_job_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``. SLURM signals every process of a job: SIGUSR1 (``--signal``)
    before the time limit, SIGTERM on preemption. A worker killed by either would make the main
    process fail at once (the DataLoader checks its workers on SIGCHLD), before it can save the
    step it is in; a terminal's Ctrl-C (SIGINT) reaches every process of its group the same way.
    So workers ignore SIGINT, SIGUSR1 and SIGUSR2, and leave cleanly
    ``WORKER_SIGTERM_GRACE_S`` after a SIGTERM (ignoring it would keep a process that exits
    without shutting its loaders down waiting forever: multiprocessing ends them by SIGTERM)."""
    for signum in (signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _leave_soon)


def _leave_soon(signum: int, frame: Any) -> None:
    timer = threading.Timer(WORKER_SIGTERM_GRACE_S, os._exit, args=(0,))
    timer.daemon = True
    timer.start()
