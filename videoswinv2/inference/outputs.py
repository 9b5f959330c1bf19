"""Output files that can be trusted: each records what produced it, a re-run continues it only
with the same settings, and nothing the package did not write is ever changed.

Every output has a record beside it, ``F.videoswinv2.json``: the command and the settings its rows
depend on. An output with content and no record is someone else's, and refused; a record of
another command or other settings is refused naming what differs, unless ``--overwrite``. Rows
are flushed as they finish; a last line cut short by a killed run is left out when read again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from videoswinv2 import __version__
from videoswinv2.errors import UsageError
from videoswinv2.files import replaced_atomically
from videoswinv2.training.evaluation import FAILED, OK

RECORD_SUFFIX = ".videoswinv2.json"


class OutputError(UsageError):
    """An output this run may not write; the message says which file and what to do."""


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() == ".jsonl"


def check_row_file(output: str | None) -> None:
    """A ``--output`` that must name a ``.csv`` / ``.jsonl`` file, not a folder."""
    if output is None:
        return
    if Path(output).is_dir() or output.endswith(("/", os.sep)):
        raise OutputError(f"--output {output} is a folder: name a .csv or .jsonl file")
    if Path(output).suffix.lower() not in (".csv", ".jsonl"):
        raise OutputError(f"--output {output} must end in .csv or .jsonl")
    check_writable(Path(output), "--output")


def check_writable(path: Path, option: str) -> None:
    """Refuse, before any work, an output whose folder cannot be written (a read-only mount, no
    permission): the nearest folder of ``path`` that exists takes a temporary file."""
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputError(
            f"{option} {path}: cannot write into {folder} ({error.strerror or error})"
        ) from None


def record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (what identifies a checkpoint, wherever it lies)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def resolved(video: str) -> str:
    """The key a video is known by: its absolute path with links resolved, so ``v.mp4``,
    ``./v.mp4`` and a link to it are one video."""
    return os.path.realpath(video)


def _holds_data(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() and (not path.is_file() or path.stat().st_size > 0)


def claim(
    path: Path, tool: str, settings: dict[str, Any], *, overwrite: bool, also: Sequence[Path] = ()
) -> bool:
    """Make ``path`` (and ``also``, of the same output) this run's output, recording ``tool`` and
    ``settings`` beside it; whether the rows there are to be continued. An :class:`OutputError`
    for an output of another program or command, or of other settings (unless ``overwrite``)."""
    settings = json.loads(json.dumps(settings))  # as the record will read back (tuples -> lists)
    record = record_path(path)
    if record.is_file():
        try:
            previous = json.loads(record.read_text(encoding="utf-8"))
            written_by, before = previous["written_by"], previous["settings"]
        except (ValueError, KeyError, TypeError):
            raise OutputError(f"{record} is not a record videoswinv2 wrote: choose another output") from None
        if written_by != tool:
            raise OutputError(f"{path} was written by {written_by}, not {tool}: choose another output")
        if before != settings and not overwrite:
            changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
            raise OutputError(
                f"{path} holds results of other settings ({', '.join(changed)} differ): rerun with the "
                "same settings, choose another output, or add --overwrite to redo every video"
            )
        continuing = not overwrite
    else:
        for owned in (path, *also):
            if _holds_data(owned):
                raise OutputError(
                    f"{owned} exists and was not written by {tool} (no {record.name} beside it): "
                    "choose another output; videoswinv2 never changes a file it did not write"
                )
        continuing = False
    record.parent.mkdir(parents=True, exist_ok=True)
    content = {"written_by": tool, "version": __version__, "settings": settings, "command": sys.argv}
    with replaced_atomically(record) as file:
        file.write((json.dumps(content, indent=1, ensure_ascii=False) + "\n").encode())
    return continuing


def read_rows(path: Path, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of a ``.csv`` or ``.jsonl`` the package wrote (none if it does not exist). A last
    line without its line end (a run killed while writing it) is left out; any other line that
    is not such a row, or a CSV header other than ``columns``, raises :class:`OutputError`."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines.pop()

    def foreign(number: int, what: str) -> OutputError:
        return OutputError(f"{path} line {number} is not {what} videoswinv2 writes: choose another output")

    rows: list[dict[str, Any]] = []
    if is_jsonl(path):
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except ValueError:
                raise foreign(number, "a row") from None
            if not isinstance(row, dict) or row.get("status") not in (OK, FAILED) or "video" not in row:
                raise foreign(number, "a row")
            rows.append(row)
        return rows
    records = csv.reader(lines)
    header = next(records, None)
    if header is None:
        return []
    if columns is not None and header != list(columns) or "status" not in header:
        raise foreign(1, "the header")
    for number, values in enumerate(records, 2):
        row = dict(zip(header, values))
        if len(values) != len(header) or row["status"] not in (OK, FAILED):
            raise foreign(number, "a row")
        rows.append(row)
    return rows


def _part_files(path: Path, columns: Sequence[str] | None) -> list[Path]:
    """The rank files a run on several devices wrote for ``path``: named exactly ``NAME.rankR``
    and holding this output's rows. Any other file beside it is the user's and stays."""
    parts = []
    for candidate in path.parent.iterdir() if path.parent.is_dir() else ():
        if re.fullmatch(re.escape(path.name) + r"\.rank\d+", candidate.name):
            try:
                read_rows(candidate, columns)
            except OutputError:
                continue
            parts.append(candidate)
    return sorted(parts)


class RowFile:
    """Rows appended to ``path`` (``.csv`` with ``columns``, or ``.jsonl``), flushed after every
    write. On several devices rank R appends to ``path.rankR``; rank 0 merges them at the end."""

    def __init__(self, path: str | os.PathLike, columns: Sequence[str]) -> None:
        self.path, self.columns = Path(path), list(columns)
        self._file: IO[str] | None = None
        self._csv: Any = None

    def rows(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The rows of ``path`` for which ``done`` holds, as they are (for ranks that only read)."""
        return [row for row in read_rows(self.path, self.columns) if done(row)]

    def keep(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Merge what the ranks of an interrupted run left, keep the rows for which ``done`` holds
        (the rest is redone), rewrite the file with them and return them."""
        parts = _part_files(self.path, self.columns)
        rows = [row for file in [self.path, *parts] for row in read_rows(file, self.columns)]
        kept = [row for row in rows if done(row)]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Replaced whole: a kill mid-rewrite leaves the rows as they were and no file beside them.
        with replaced_atomically(self.path, "w", newline="", encoding="utf-8") as file:
            self._attach(file)
            self.write(kept)
        self._file, self._csv = None, None
        for part in parts:
            part.unlink()
        return kept

    def reset(self) -> list[dict[str, Any]]:
        """Start afresh (the rows of an earlier run go); returns no rows."""
        for old in [self.path, *_part_files(self.path, self.columns)]:
            old.unlink(missing_ok=True)
        return []

    def _open(self, path: Path, mode: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._attach(open(path, mode, newline="", encoding="utf-8"))

    def _attach(self, file: IO[str]) -> None:
        """Write rows into ``file`` (a header first where it is an empty CSV)."""
        self._file = file
        if not is_jsonl(self.path):
            self._csv = csv.DictWriter(self._file, self.columns, extrasaction="ignore")
            if self._file.tell() == 0:
                self._csv.writeheader()

    def open(self, rank: int = 0, world: int = 1) -> None:
        """Start appending (this rank's part file on several devices)."""
        self._open(self.path if world == 1 else self.path.with_name(f"{self.path.name}.rank{rank}"), "a")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        assert self._file is not None, "open() first"
        for row in rows:
            if self._csv is not None:
                self._csv.writerow(row)
            else:
                self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._csv = None, None

    def merge_parts(self) -> None:
        """Append the rank files' rows to ``path`` (rank 0, after every rank closed its file)."""
        parts = _part_files(self.path, self.columns)
        if not parts:
            return
        self._open(self.path, "a")
        for part in parts:
            self.write(read_rows(part, self.columns))
            part.unlink()
        self.close()
