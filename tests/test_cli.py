"""The command line end to end: configs, fit, multi-view test (1 and 2 processes), resume, predict."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from videoswinv2.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
K400_CONFIGS = [c for c in CONFIGS if c.name.startswith("k400_")]


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m videoswinv2 ARGS`` in a fresh process (as a user runs it), from the repo root."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "videoswinv2", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    return result


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_print_config_works_for_every_config(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "class_path: videoswinv2.training.VideoClassifier" in out
    assert "class_path: videoswinv2.data.KineticsDataModule" in out
    assert "use_distributed_sampler: false" in out


@pytest.mark.parametrize("config", K400_CONFIGS, ids=lambda p: p.name)
def test_k400_configs_stop_at_once_naming_the_option_to_set(config, tmp_path):
    result = run_cli("fit", "-c", str(config), "--model.init_args.pretrained_2d", "null",
                     "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.strategy", "auto",
                     "--trainer.precision", "32-true", "--trainer.logger", "false", timeout=120)
    assert result.returncode != 0
    assert "--data.init_args.data_root" in result.stderr.strip().splitlines()[-1]


def test_missing_2d_checkpoint_names_the_option(tmp_path):
    result = run_cli("fit", "-c", "configs/k400_tiny.yaml", "--data.init_args.data_root", str(tmp_path),
                     "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.logger", "false", timeout=120)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "--model.init_args.pretrained_2d" in last_line and "swinv2_tiny_patch4_window8_256.pth" in last_line
