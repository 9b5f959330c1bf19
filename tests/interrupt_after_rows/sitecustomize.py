"""Imported when a Python process starts with this folder on ``PYTHONPATH`` (tests/test_outputs.py):
once ``INTERRUPT_AFTER_ROWS`` rows of a prediction output are written, the process sends itself
SIGINT, as a user's Ctrl-C would arrive then. A test that waits for the rows to appear instead
raced the process: on 2 busy cores it sometimes finished all 40 videos (1.2 s) between two looks."""

from __future__ import annotations

import os
import signal

from videoswinv2.inference.outputs import RowFile

_write = RowFile.write
_written = 0


def _write_then_interrupt(self: RowFile, rows) -> None:
    global _written
    _write(self, rows)
    before, _written = _written, _written + len(rows)
    if before < int(os.environ["INTERRUPT_AFTER_ROWS"]) <= _written:
        os.kill(os.getpid(), signal.SIGINT)


RowFile.write = _write_then_interrupt
