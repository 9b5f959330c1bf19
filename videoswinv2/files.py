"""Files that are either whole or as they were: what every writer of the package uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def replaced_atomically(path: str | Path, mode: str = "wb", **open_args: str) -> Iterator[IO]:
    """A file open for writing (``open_args``: ``open``'s ``encoding``, ``newline``) whose content
    replaces ``path`` (or creates it) only once the block ends without an error. It is an unnamed file in ``path``'s folder (Linux's ``O_TMPFILE``),
    named at the end, so even a kill -9 leaves no temporary file; where the file system has none,
    a hidden ``.NAME.tmp-PID`` beside ``path``, removed on error.
    """
    path = Path(path)
    folder = path.parent
    temporary = folder / f".{path.name}.tmp-{os.getpid()}"
    try:
        descriptor = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o644)
    except (AttributeError, OSError):  # not Linux, or a file system without unnamed files
        descriptor = os.open(temporary, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
        unnamed = False
    else:
        unnamed = True
    try:
        with os.fdopen(descriptor, mode, **open_args) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
            if unnamed:
                _name(file.fileno(), temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _name(descriptor: int, path: Path) -> None:
    """Link the unnamed file ``descriptor`` in as ``path``: ``linkat`` following the link in
    ``/proc`` (``os.link`` calls plain ``link``, which does not, unless given a folder's descriptor)."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{descriptor}", path.name, dst_dir_fd=folder)
    finally:
        os.close(folder)
