"""Errors a user fixes by changing a setting or an input file, not by reading a traceback."""

from __future__ import annotations


class UsageError(ValueError):
    """A setting or input file to change; the commands report it in one line and exit 2.

    A ``ValueError``, so library callers catching those keep working."""


class CheckpointError(UsageError):
    """A file that cannot be used as the checkpoint it was given as; the message says why."""


class WorkFailed(RuntimeError):
    """Work that could not be done with right settings (videos that do not decode, training steps
    that are not finite); the commands report it in one line and exit 1."""
