"""Long runs: exact mid-epoch resume (kill -9, SIGTERM), the same batches with any number of
workers, and steps with a non-finite loss that update nothing."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import REPO, check, run_cli, run_cli_in_process
from lightning.pytorch.callbacks import ModelCheckpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from videoswinv2.cli import main
from videoswinv2.data import KineticsDataModule
from videoswinv2.training import NonFiniteSteps, NonFiniteStepsError, VideoClassifier

TINY_DATA = dict(  # clip and crop sizes for the 32 px synthetic videos
    class_names_file="classes.txt",
    num_frames=4,
    frame_interval=2,
    train_crop_size=32,
    val_short_side=32,
    val_crop_size=32,
    batch_size=2,
    clips_per_video=2,
)
TINY_MODEL = dict(embed_dim=16, depths=(1,), num_heads=(2,), window_size=(2, 4, 4))


def _train_list(root: Path, broken: Path, out: Path) -> Path:
    """The 16 synthetic training videos as a ``path label`` list, a broken file at position 5."""
    classes = (root / "classes.txt").read_text().splitlines()
    lines = []
    for row in (root / "annotations" / "train.csv").read_text().splitlines()[1:]:
        label, youtube_id, start, end, _ = row.split(",")
        lines.append(f"train/{youtube_id}_{int(start):06d}_{int(end):06d}.mp4 {classes.index(label)}")
    lines.insert(5, f"{broken} 0")
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def train_list(data_synthetic_root, data_broken_videos, tmp_path_factory) -> Path:
    return _train_list(
        data_synthetic_root, data_broken_videos["text"], tmp_path_factory.mktemp("lists") / "t.txt"
    )


def _batches(loader: Any) -> list[tuple[list[int], str]]:
    return [(b["index"].tolist(), hashlib.sha1(b["video"].numpy().tobytes()).hexdigest()) for b in loader]


def test_first_epoch_batches_are_the_same_with_0_and_2_workers(data_synthetic_root, train_list) -> None:
    runs = {}
    for workers in (0, 2):
        dm = KineticsDataModule(
            str(data_synthetic_root), train_annotations=str(train_list), num_workers=workers, **TINY_DATA
        )
        runs[workers] = _batches(dm.train_dataloader())
    assert runs[0] == runs[2]
    assert len(runs[0]) == 9  # 17 videos (one broken, replaced by another) in batches of 2
    assert all(len(indices) == 4 for indices, _ in runs[0][:-1])  # 2 clips per video


def test_a_resumed_loader_continues_the_epoch_and_the_next(data_synthetic_root, train_list) -> None:
    def loader(workers: int, state: dict | None = None) -> Any:
        dm = KineticsDataModule(
            str(data_synthetic_root), train_annotations=str(train_list), num_workers=workers, **TINY_DATA
        )
        if state is not None:
            dm.load_state_dict(state)
        return dm, dm.train_dataloader()

    _, whole = loader(0)
    expected = []
    for epoch in range(2):
        whole.sampler.set_epoch(epoch)
        expected += _batches(whole)
    dm, first = loader(2)
    seen = []
    for batch in first:
        seen += _batches([batch])
        if len(seen) == 5:
            break
    state = dm.state_dict()
    _, resumed = loader(2, state)
    seen += _batches(resumed)  # the rest of epoch 0, as Lightning iterates it
    resumed.sampler.set_epoch(1)
    seen += _batches(resumed)
    assert seen == expected
    with pytest.raises(ValueError, match="resume with --data.init_args.num_workers 2"):
        loader(0, state)


# -- the command line, killed and resumed --------------------------------------------------------


def _fit(
    root: Path, data_root: Path, train_list: Path, name: str, *extra: str, in_process: bool = False
) -> Any:
    """``videoswinv2 fit`` of the smoke config on the tiny data, 2 workers, 2 clips per video, a
    step checkpoint every 8 steps (9 steps per epoch), recording every batch to ``name.jsonl``;
    in a fresh process (the runs that get a signal), or ``in_process`` through ``cli.main``."""
    args = [
        "fit",
        "-c",
        "configs/smoke.yaml",
        "--data.init_args.data_root",
        str(data_root),
        "--data.init_args.train_annotations",
        str(train_list),
        *[f"--data.init_args.{key}={value}" for key, value in TINY_DATA.items()],
        "--data.init_args.num_workers=2",
        "--model.init_args.num_classes=4",
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",  # the config's TensorBoardLogger
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.filename=last",
        "--trainer.callbacks.enable_version_counter=false",
        "--trainer.callbacks.every_n_train_steps=8",
        "--trainer.callbacks+=long_run_callbacks.RecordBatches",
        f"--trainer.callbacks.path={root / name}.jsonl",
        *extra,
    ]
    if in_process:
        return run_cli_in_process(*args)
    return run_cli(*args, env={"PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _signal_at(step: int, name: str) -> list[str]:
    return [
        "--trainer.callbacks+=long_run_callbacks.SignalAt",
        f"--trainer.callbacks.step={step}",
        f"--trainer.callbacks.signal={name}",
    ]


@pytest.fixture(scope="module")
def interrupted(data_synthetic_root, train_list, tmp_path_factory) -> dict[str, Any]:
    """An uninterrupted fit, and the same fit killed with SIGKILL as step 8 starts (just after
    the step checkpoint 8), resumed, stopped by SIGTERM during step 12, and resumed again. The
    runs that get no signal (the uninterrupted one, the last) run in this process."""
    root = tmp_path_factory.mktemp("long")
    full, chain = root / "full", root / "chain"
    check(_fit(full, data_root=data_synthetic_root, train_list=train_list, name="full", in_process=True))
    killed = _fit(chain, data_synthetic_root, train_list, "killed", *_signal_at(8, "SIGKILL"))
    ckpt = chain / "smoke" / "version_0" / "checkpoints" / "last.ckpt"
    killed_step = torch.load(ckpt, weights_only=True)["global_step"]
    stopped = _fit(
        chain, data_synthetic_root, train_list, "stopped", "--ckpt_path=last", *_signal_at(12, "SIGTERM")
    )
    stopped_step = torch.load(ckpt, weights_only=True)["global_step"]
    finished = check(
        _fit(chain, data_synthetic_root, train_list, "finished", "--ckpt_path=last", in_process=True)
    )
    return {
        "root": root,
        "full": _records(full / "full.jsonl"),
        "killed": killed,
        "killed_step": killed_step,
        "stopped": stopped,
        "stopped_step": stopped_step,
        "finished": finished,
        "chain": {name: _records(chain / f"{name}.jsonl") for name in ("killed", "stopped", "finished")},
        "weights": [
            torch.load(r / "smoke" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)[
                "state_dict"
            ]
            for r in (full, chain)
        ],
    }


def test_kill_9_after_a_step_checkpoint_resumes_with_the_same_batches(interrupted) -> None:
    assert interrupted["killed"].returncode == -signal.SIGKILL
    assert interrupted["killed_step"] == 8  # the step checkpoint, mid-epoch (9 steps per epoch)
    full, chain = interrupted["full"], interrupted["chain"]
    assert [r["step"] for r in chain["killed"]] == list(range(1, 9))
    assert chain["stopped"][0]["step"] == 9  # the resumed run starts at the next step
    resumed = chain["killed"][:8] + chain["stopped"] + chain["finished"]
    assert len(full) == 18 and {r["epoch"] for r in full} == {0, 1}
    assert resumed == full  # video indices and pixels, step for step, across the epoch boundary


def test_sigterm_saves_the_current_step_and_continues_in_the_same_run(interrupted) -> None:
    stopped = interrupted["stopped"]
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
    ckpt = interrupted["root"] / "chain" / "smoke" / "version_0" / "checkpoints" / "last.ckpt"
    assert f"SIGTERM: saved epoch 1, step 13 to {ckpt}" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert interrupted["stopped_step"] == 13  # the step during which the signal came
    chain = interrupted["chain"]
    assert chain["stopped"][-1]["step"] == 13 and chain["finished"][0]["step"] == 14
    runs = interrupted["root"] / "chain" / "smoke"
    assert sorted(p.name for p in runs.iterdir()) == ["version_0"]  # one log folder throughout
    events = EventAccumulator(str(runs / "version_0"))  # every event file of the folder
    events.Reload()
    steps = {event.step for event in events.Scalars("train/loss_step")}
    assert min(steps) < 8 and max(steps) >= 14  # the first run and the last one logged into it
    full, chained = interrupted["weights"]
    assert all(torch.equal(full[key], chained[key]) for key in full)  # and trained the same weights


# -- non-finite steps ----------------------------------------------------------------------------


class _NaNAtSteps(VideoClassifier):
    """A NaN in the clips, so in the loss, at the given global steps."""

    nan_steps: tuple[int, ...] = ()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.global_step in self.nan_steps:
            batch["video"].view(-1)[0] = math.nan
        return super().training_step(batch, batch_idx)


class _Watch(pl.Callback):
    """Per step: a copy of the weights and the learning rate before and after it."""

    def __init__(self) -> None:
        self.before: list[tuple[dict, float, int]] = []
        self.after: list[tuple[dict, float, int]] = []

    def _state(self, trainer: pl.Trainer, module: pl.LightningModule) -> tuple[dict, float, int]:
        weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        return weights, trainer.optimizers[0].param_groups[0]["lr"], scheduler.last_epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.before.append(self._state(trainer, pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.after.append(self._state(trainer, pl_module))


def _nan_fit(
    root: Path, train_list: Path, tmp_path: Path, nan_steps: tuple[int, ...], *callbacks: Any
) -> Any:
    module = _NaNAtSteps(num_classes=4, model_kwargs=TINY_MODEL, warmup_epochs=0.5, lr=1e-2)
    module.nan_steps = nan_steps
    data = KineticsDataModule(
        str(root), train_annotations=str(train_list), val_annotations=None, num_workers=0, **TINY_DATA
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        gradient_clip_val=1.0,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    return trainer


def test_a_nan_step_updates_nothing_is_counted_and_the_run_goes_on(
    data_synthetic_root, train_list, tmp_path, caplog
) -> None:
    watch = _Watch()
    trainer = _nan_fit(data_synthetic_root, train_list, tmp_path, (3,), NonFiniteSteps(), watch)
    assert trainer.global_step == 9  # the run went on to the end of the epoch
    weights_before, lr_before, schedule_before = watch.before[3]
    weights_after, lr_after, schedule_after = watch.after[3]
    assert all(torch.equal(weights_before[k], weights_after[k]) for k in weights_before)
    assert (lr_after, schedule_after) == (lr_before, schedule_before)
    for good in (2, 4):  # the neighbouring steps do update weights and the schedule
        assert not all(torch.equal(watch.before[good][0][k], watch.after[good][0][k]) for k in weights_before)
        assert watch.after[good][2] == watch.before[good][2] + 1
    assert trainer.callback_metrics["train/skipped_steps"] == 1
    counter = next(c for c in trainer.callbacks if isinstance(c, NonFiniteSteps))
    assert (counter.total, counter.in_a_row) == (1, 0)
    assert "epoch 0, step 4: loss nan, gradient norm nan: not finite" in caplog.text
    assert "train/" in caplog.text and ".mp4" in caplog.text.split("step 4: loss nan")[1].splitlines()[0]


def test_nan_steps_in_a_row_stop_the_run_naming_the_videos(data_synthetic_root, train_list, tmp_path) -> None:
    checkpoints = ModelCheckpoint(dirpath=tmp_path, filename="last", every_n_train_steps=1)
    watch = _Watch()
    with pytest.raises(NonFiniteStepsError) as error:
        _nan_fit(
            data_synthetic_root, train_list, tmp_path, (2, 3, 4, 5), NonFiniteSteps(3), checkpoints, watch
        )
    message = str(error.value)
    assert "\n" not in message and message.startswith("3 training steps in a row had a non-finite loss")
    assert "max_bad_steps=3" in message and "stopped at epoch 0, step 5" in message
    assert message.count(".mp4") == 2  # the last bad batch: 2 videos
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 4  # nothing was saved after the step that stopped the run
    good = watch.after[1][0]  # the weights after the last good step
    assert all(torch.equal(saved["state_dict"][k], good[k]) for k in good)


def test_the_command_line_ends_a_run_of_nan_steps_in_one_line(
    data_synthetic_root, train_list, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    code = main(
        [
            "fit",
            "-c",
            "configs/smoke.yaml",
            f"--data.init_args.data_root={data_synthetic_root}",
            f"--data.init_args.train_annotations={train_list}",
            *[f"--data.init_args.{key}={value}" for key, value in TINY_DATA.items()],
            "--data.init_args.num_workers=0",
            "--model.init_args.num_classes=4",
            "--trainer.max_epochs=1",
            "--trainer.limit_val_batches=0",
            "--trainer.enable_progress_bar=false",
            "--trainer.logger=false",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.callbacks+=long_run_callbacks.PoisonBatches",
            "--trainer.callbacks.steps=[1,2]",
            "--trainer.callbacks+=videoswinv2.training.NonFiniteSteps",
            "--trainer.callbacks.max_bad_steps=2",
        ]
    )
    assert code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("videoswinv2: error: 2 training steps in a row had a non-finite loss")


def test_loader_workers_outlive_slurm_signals_and_never_hold_up_an_exit(
    data_synthetic_root, train_list
) -> None:
    """SIGUSR1 (SLURM's time-limit warning goes to every process of a job) leaves the workers
    running; a process that exits with its workers alive (they get SIGTERM from multiprocessing,
    which they outlive by the grace period) still exits."""
    # The workers' grace after SIGTERM shortened to 1 s (set before they fork): the exit waits for it.
    script = f"""
import os, signal, time
from videoswinv2.data import KineticsDataModule, workers
workers.WORKER_SIGTERM_GRACE_S = 1.0
data = KineticsDataModule({str(data_synthetic_root)!r}, train_annotations={str(train_list)!r}, num_workers=2,
                          **{TINY_DATA!r})
batches = iter(data.train_dataloader())
next(batches)
for worker in batches._workers:
    os.kill(worker.pid, signal.SIGUSR1)
time.sleep(1)
assert all(worker.is_alive() for worker in batches._workers)
next(batches)
print("fine", flush=True)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "fine" in result.stdout, result.stderr[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM])
def test_on_slurm_the_time_limit_signal_requeues_the_job(signum, tmp_path, monkeypatch, caplog) -> None:
    """SIGUSR1 (``--signal=USR1@...``): save the step, ``scontrol requeue`` the job, exit 138;
    SIGTERM (``scancel``, preemption): save and exit 143, never requeue."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from videoswinv2.training import Preemption

    calls = tmp_path / "scontrol_calls"
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.parent.mkdir()
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{scontrol.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    saved: list[Path] = []
    trainer = SimpleNamespace(  # what Preemption reads of a Trainer
        _accelerator_connector=SimpleNamespace(cluster_environment=SLURMEnvironment(auto_requeue=True)),
        strategy=SimpleNamespace(reduce_boolean_decision=lambda decision, all: decision),
        received_sigterm=False,
        is_global_zero=True,
        current_epoch=2,
        global_step=40,
        checkpoint_callback=SimpleNamespace(dirpath=str(tmp_path / "checkpoints")),
        save_checkpoint=lambda path, weights_only: saved.append(path),
        fit_loop=SimpleNamespace(
            epoch_loop=SimpleNamespace(batch_progress=SimpleNamespace(is_last_batch=False))
        ),
    )
    preemption = Preemption()
    preemption.on_train_batch_end(trainer, None, None, None, 0)  # no signal: goes on
    assert not saved
    preemption._note(signum, None)
    with pytest.raises(SystemExit) as stop:
        preemption.on_train_batch_end(trainer, None, None, None, 0)
    assert stop.value.code == 128 + signum
    assert saved == [tmp_path / "checkpoints" / "last.ckpt"]
    if signum == signal.SIGUSR1:
        assert calls.read_text().split() == ["requeue", "4242"]
        assert "SIGUSR1: saved epoch 2, step 40" in caplog.text and "requeued SLURM job 4242" in caplog.text
    else:
        assert not calls.exists()
        assert "run the same command with --ckpt_path last to continue" in caplog.text


def test_every_rank_resumes_its_own_share_from_rank_0s_state() -> None:
    """A checkpoint holds rank 0's loader state; each rank applies it to its own shard."""
    from videoswinv2.data import ResumableSampler

    def sampler(rank: int) -> ResumableSampler:
        result = ResumableSampler(range(11), num_replicas=2, rank=rank, seed=3)
        result.set_epoch(4)
        return result

    whole = {rank: list(sampler(rank)) for rank in (0, 1)}
    indices = [key.index for keys in whole.values() for key in keys]
    assert len(indices) == 12 and set(indices) == set(range(11))  # one repeated to even out the ranks
    rank_0 = sampler(0)
    keys = iter(rank_0)
    for _ in range(3):
        next(keys)
    state = rank_0.state_dict()
    for rank in (0, 1):
        resumed = sampler(rank)
        resumed.load_state_dict(state)
        assert list(resumed) == whole[rank][3:]
    assert state == {"epoch": 4, "position": 3}
