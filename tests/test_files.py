"""``replaced_atomically``: a file is either whole or as it was, whatever stops its writer."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from videoswinv2.files import replaced_atomically

WRITER = """
import os, signal, sys
from videoswinv2.files import replaced_atomically
with replaced_atomically(sys.argv[1]) as file:
    file.write(b"new" * 100_000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_9_mid_write_leaves_the_file_as_it_was_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")
    result = subprocess.run([sys.executable, "-c", WRITER, str(target)], cwd=REPO, capture_output=True)
    assert result.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize("unnamed_files", [True, False], ids=["O_TMPFILE", "hidden-temporary"])
def test_an_error_mid_write_leaves_the_file_as_it_was_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed_files: bool
) -> None:
    if not unnamed_files:  # as on a file system (or system) without unnamed files
        monkeypatch.delattr("os.O_TMPFILE")
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), replaced_atomically(target, "w") as file:
        file.write("new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_finished_write_replaces_or_creates_the_file(tmp_path: Path) -> None:
    for name in ("new.bin", "new.bin"):
        with replaced_atomically(tmp_path / name) as file:
            file.write(b"content")
    assert (tmp_path / "new.bin").read_bytes() == b"content"
    assert [p.name for p in tmp_path.iterdir()] == ["new.bin"]
