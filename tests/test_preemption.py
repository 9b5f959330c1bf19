"""A fit stopped at an epoch's last step (SIGTERM, a terminal's Ctrl-C) and resumed validates and
keeps checkpoints exactly as the uninterrupted fit; a second Ctrl-C exits at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO, check, run_cli_in_process
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

STEPS_PER_EPOCH = 4  # 16 training videos, batches of 4


def tiny_fit_args(root: Path, data_root: Path, *extra: str) -> list[str]:
    """``fit`` of the smoke config, 3 epochs of 4 steps on the tiny data, one loader worker,
    logging into ``root``."""
    return [
        "fit",
        "-c",
        "configs/smoke.yaml",
        f"--data.init_args.data_root={data_root}",
        "--data.init_args.class_names_file=classes.txt",
        "--data.init_args.num_frames=4",
        "--data.init_args.frame_interval=2",
        "--data.init_args.train_crop_size=32",
        "--data.init_args.val_short_side=32",
        "--data.init_args.val_crop_size=32",
        "--data.init_args.batch_size=4",
        "--data.init_args.num_workers=1",
        "--model.init_args.num_classes=4",
        "--model.init_args.model_kwargs.depths=[1]",
        "--model.init_args.model_kwargs.num_heads=[2]",
        "--model.init_args.model_kwargs.window_size=[2,4,4]",
        "--trainer.max_epochs=3",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",
        *extra,
    ]


def _fit(root: Path, data_root: Path, *extra: str) -> subprocess.CompletedProcess:
    """:func:`tiny_fit_args` run by ``python -m videoswinv2`` in a session of its own (so a signal
    to its process group reaches nothing else)."""
    return subprocess.run(
        [sys.executable, "-m", "videoswinv2", *tiny_fit_args(root, data_root, *extra)],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"},
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )


def _signal_at(step: int, name: str, times: int = 1) -> list[str]:
    return [
        "--trainer.callbacks+=long_run_callbacks.SignalAt",
        f"--trainer.callbacks.step={step}",
        f"--trainer.callbacks.signal={name}",
        f"--trainer.callbacks.times={times}",
        "--trainer.callbacks.group=true",
    ]


def _validation(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every validation metric the run logged: (step, value) in order."""
    events = EventAccumulator(str(run))
    events.Reload()
    tags = [tag for tag in events.Tags()["scalars"] if tag.startswith("val/")]
    return {tag: sorted((e.step, e.value) for e in events.Scalars(tag)) for tag in tags}


def _checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


@pytest.fixture(scope="module")
def epoch_end_runs(data_synthetic_root, tmp_path_factory) -> dict[str, Any]:
    """An uninterrupted fit; the same fit stopped by SIGTERM in the last step of epoch 0, resumed
    and stopped by Ctrl-C in the last step of epoch 1, and resumed to the end."""
    root = tmp_path_factory.mktemp("epoch_end")
    full, chain = root / "full", root / "chain"
    check(run_cli_in_process(*tiny_fit_args(full, data_synthetic_root)))  # no signal: in this process
    last = STEPS_PER_EPOCH - 1  # SignalAt counts steps from 0
    term = _fit(chain, data_synthetic_root, *_signal_at(last, "SIGTERM"))
    run = chain / "smoke" / "version_0"
    term_step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    ctrl_c = _fit(
        chain, data_synthetic_root, "--ckpt_path=last", *_signal_at(2 * STEPS_PER_EPOCH - 1, "SIGINT")
    )
    ctrl_c_step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    finished = check(run_cli_in_process(*tiny_fit_args(chain, data_synthetic_root, "--ckpt_path=last")))
    return {
        "full": full / "smoke" / "version_0",
        "chain": run,
        "term": (term, term_step),
        "ctrl_c": (ctrl_c, ctrl_c_step),
        "finished": finished,
    }


def test_sigterm_in_an_epochs_last_step_saves_after_its_validation(epoch_end_runs) -> None:
    term, step = epoch_end_runs["term"]
    assert term.returncode == 128 + signal.SIGTERM, term.stderr[-3000:]
    assert step == STEPS_PER_EPOCH
    assert "SIGTERM: saved epoch 0, step 4 to" in term.stderr and "Traceback" not in term.stderr
    assert "weights_only" not in term.stderr  # Lightning's line for a save that does not say


def test_ctrl_c_in_fit_saves_the_step_and_says_how_to_continue(epoch_end_runs) -> None:
    ctrl_c, step = epoch_end_runs["ctrl_c"]
    assert ctrl_c.returncode == 130, ctrl_c.stderr[-3000:]
    assert step == 2 * STEPS_PER_EPOCH
    last = ctrl_c.stderr.strip().splitlines()[-1]
    assert "interrupted: saved epoch 1, step 8 to" in last and "--ckpt_path last" in last
    assert "Traceback" not in ctrl_c.stderr and "Detected KeyboardInterrupt" not in ctrl_c.stderr


def test_a_run_stopped_at_epoch_ends_validates_and_keeps_checkpoints_as_an_uninterrupted_one(
    epoch_end_runs,
) -> None:
    full, chain = epoch_end_runs["full"], epoch_end_runs["chain"]
    expected = _validation(full)
    assert len(expected["val/top1"]) == 3  # one validation per epoch
    assert _validation(chain) == expected  # same steps, same values: no validation skipped
    assert _checkpoints(chain) == _checkpoints(full)  # the same best checkpoint, and last.ckpt


def test_a_second_ctrl_c_exits_at_once_saving_nothing(data_synthetic_root, tmp_path) -> None:
    result = _fit(tmp_path, data_synthetic_root, *_signal_at(1, "SIGINT", times=2))
    assert result.returncode == 130, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "interrupted: nothing saved"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "smoke" / "version_0" / "checkpoints" / "last.ckpt").exists()
