"""Run-folder policy of the LightningCLI commands, on folders alone (no fit)."""

from __future__ import annotations

import os
from pathlib import Path

from videoswinv2.commands.run_folders import (
    Continuation,
    continue_last_run,
    evaluated_run,
    remove_failed_run,
    runs_in,
    unreadable_checkpoint,
)


def _run(root: Path, version: str, mtime: float | None = None) -> Path:
    """A run folder with checkpoints/last.ckpt (written at ``mtime``)."""
    ckpt = root / version / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    if mtime is not None:
        os.utime(ckpt, (mtime, mtime))
    return ckpt


def test_continuing_takes_the_newest_run_with_a_last_checkpoint(tmp_path):
    _run(tmp_path, "version_0", mtime=2_000)
    newest = _run(tmp_path, "version_1", mtime=3_000)
    _run(tmp_path, "version_2", mtime=1_000)
    (tmp_path / "version_3").mkdir()  # a run that wrote no checkpoint
    # TensorBoard adds to the folder: it logs on there, where Lightning finds last.ckpt.
    assert continue_last_run(tmp_path, None, reuses_folders=True) == Continuation(version="version_1")
    # Another logger gets a new version and resumes from the checkpoint's path.
    assert continue_last_run(tmp_path, None, reuses_folders=False) == Continuation(ckpt_path=str(newest))


def test_a_first_start_has_nothing_to_continue(tmp_path):
    assert continue_last_run(tmp_path / "absent", None, reuses_folders=True) is None
    (tmp_path / "version_0").mkdir()  # no checkpoint in it
    assert continue_last_run(tmp_path, None, reuses_folders=True) is None


def test_a_given_version_is_continued_as_configured_if_its_folder_exists(tmp_path):
    (tmp_path / "version_2").mkdir()
    (tmp_path / "mine").mkdir()
    assert continue_last_run(tmp_path, 2, reuses_folders=True) == Continuation()
    assert continue_last_run(tmp_path, "mine", reuses_folders=False) == Continuation()
    assert continue_last_run(tmp_path, 3, reuses_folders=True) is None


def test_evaluating_a_runs_checkpoint_logs_beside_the_run():
    run = Path("runs/smoke/version_0")
    assert evaluated_run("test", str(run / "checkpoints/last.ckpt")) == (run, "test_last")
    assert evaluated_run("validate", str(run / "checkpoints/epoch=3.ckpt")) == (run, "validate_epoch=3")
    assert evaluated_run("fit", str(run / "checkpoints/last.ckpt")) is None
    assert evaluated_run("test", None) is None
    assert evaluated_run("test", "elsewhere/model.ckpt") is None  # not a run's checkpoints folder
    assert evaluated_run("test", "s3://bucket/run/checkpoints/last.ckpt") is None


def test_a_failed_run_without_a_checkpoint_leaves_no_folder(tmp_path):
    earlier = tmp_path / "version_0"
    earlier.mkdir()
    before = runs_in(tmp_path)
    assert before == {earlier} and runs_in(tmp_path / "absent") == set() and runs_in(None) == set()
    failed = tmp_path / "version_1"
    (failed / "nested").mkdir(parents=True)
    (failed / "nested" / "events.out").write_text("")
    assert remove_failed_run(failed, tmp_path, before) and not failed.exists()
    # Kept: a folder that was there before, one with a checkpoint, one outside the logger's root.
    assert not remove_failed_run(earlier, tmp_path, before) and earlier.is_dir()
    saved = _run(tmp_path, "version_2").parent.parent
    assert not remove_failed_run(saved, tmp_path, before) and saved.is_dir()
    outside = tmp_path / "other" / "version_0"
    outside.mkdir(parents=True)
    assert not remove_failed_run(outside, tmp_path, before) and outside.is_dir()


def test_a_checkpoint_cut_short_is_named_with_the_newest_whole_one_to_resume_from(tmp_path):
    import torch

    folder = tmp_path / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    for name, mtime in (("epoch=0-step=4.ckpt", 100), ("epoch=1-step=8.ckpt", 200)):
        torch.save({"step": mtime}, folder / name)
        os.utime(folder / name, (mtime, mtime))
    last = folder / "last.ckpt"
    torch.save({"step": 300}, last)
    assert unreadable_checkpoint(last) is None
    last.write_bytes(last.read_bytes()[:100])  # a kill during the write
    assert unreadable_checkpoint(last) == (
        f"{last} cannot be read (cut short while it was written?): resume from the newest readable "
        f"checkpoint of the run with --ckpt_path {folder / 'epoch=1-step=8.ckpt'}"
    )
    for whole in folder.glob("epoch=*"):
        whole.unlink()
    assert "no other checkpoint of the run is readable" in unreadable_checkpoint(last)
