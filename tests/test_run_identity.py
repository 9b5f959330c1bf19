"""A resumed fit trains on the checkpoint's data with the checkpoint's loader, or says which
differs and how to accept it; accepted, it goes on from the next epoch's first batch."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
from conftest import run_cli_in_process
from test_preemption import tiny_fit_args

from videoswinv2.cli import main
from videoswinv2.data.run_identity import differences

ACCEPT = "--trainer.callbacks+=videoswinv2.data.RunIdentity"


@pytest.fixture(scope="module")
def preempted(data_synthetic_root, tmp_path_factory) -> Path:
    """A fit stopped by SIGTERM in step 6 (epoch 1, its second batch): its log folder, with the
    copy of the tiny data it trained on beside it (``data``)."""
    root = tmp_path_factory.mktemp("identity")
    shutil.copytree(data_synthetic_root, root / "data")
    stop = ["--trainer.callbacks+=long_run_callbacks.SignalAt", "--trainer.callbacks.step=5"]
    stop += ["--trainer.callbacks.signal=SIGTERM"]  # to this process: Preemption saves and exits
    result = run_cli_in_process(*tiny_fit_args(root / "runs", root / "data", *stop))
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-3000:]
    return root


def _resume(preempted: Path, tmp_path: Path, change, *extra: str) -> tuple[int, list[dict]]:
    """``fit --ckpt_path last`` in this process, on a copy of the preempted run and its data (so
    another ``data_root``) after ``change(data)``: the exit code and the batches it trained on."""
    shutil.copytree(preempted, tmp_path, dirs_exist_ok=True)
    data = change(tmp_path / "data") or tmp_path / "data"
    batches = tmp_path / "batches.jsonl"
    args = tiny_fit_args(tmp_path / "runs", data, "--ckpt_path=last", *extra)
    args += ["--trainer.callbacks+=long_run_callbacks.RecordBatches", f"--trainer.callbacks.path={batches}"]
    with pytest.raises(SystemExit) as stopped, pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.argv", ["videoswinv2"])
        main(args)
        raise SystemExit(0)
    records = [json.loads(line) for line in batches.read_text().splitlines()] if batches.exists() else []
    return stopped.value.code, records


def _reordered_classes(data: Path) -> None:
    classes = (data / "classes.txt").read_text().splitlines()
    (data / "classes.txt").write_text("\n".join([classes[1], classes[0], *classes[2:]]) + "\n")


def _fewer_videos(data: Path) -> None:
    header, *rows = (data / "annotations" / "train.csv").read_text().splitlines()
    last_of_each = {row.split(",")[0]: row for row in rows}.values()
    kept = [row for row in rows if row not in last_of_each]  # 3 videos of each class
    (data / "annotations" / "train.csv").write_text("\n".join([header, *kept]) + "\n")


@pytest.mark.parametrize(
    ("change", "extra", "named", "accepting"),
    [
        # elsewhere, and not the same data: both named
        (_fewer_videos, [], ("data_root is ", "videos is 12 (checkpoint: 16)"), "accept_new_data true"),
        (_reordered_classes, [], ("the class list (another order)",), "accept_new_data true"),
        (
            lambda data: None,
            ["--data.init_args.batch_size=2"],
            ("batch_size is 2 (checkpoint: 4)",),
            "accept_new_loader",
        ),
    ],
    ids=["data_root and videos", "class list", "batch_size"],
)
def test_a_resume_on_other_data_or_another_loader_names_the_difference_and_its_option(
    preempted, tmp_path, capsys, change, extra, named, accepting
) -> None:
    code, records = _resume(preempted, tmp_path, change, *extra)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and all(text in last for text in named) and accepting in last, last
    assert last.startswith("error: this run is not the checkpoint's")
    assert records == []  # refused before any step


def test_a_resume_on_the_same_data_elsewhere_continues_the_epoch(preempted, tmp_path, caplog) -> None:
    caplog.set_level("INFO")
    code, records = _resume(preempted, tmp_path, lambda data: None)
    assert code == 0
    assert "the same annotation files, classes and videos, so the run goes on" in caplog.text
    assert [(r["epoch"], r["batch"]) for r in records] == [(1, 2), (1, 3), *((2, b) for b in range(4))]


def test_a_resume_on_changed_data_accepted_starts_the_next_epoch_from_its_first_batch(
    preempted, tmp_path, caplog
) -> None:
    code, records = _resume(
        preempted, tmp_path, _fewer_videos, ACCEPT, "--trainer.callbacks.accept_new_data=true"
    )
    assert code == 0
    assert "epoch 1 is left as it was, the loader starts epoch 2 from its first batch" in caplog.text
    assert "videos is 12 (checkpoint: 16)" in caplog.text
    assert [r["epoch"] for r in records] == [2, 2, 2]  # 12 videos in batches of 4: one clean epoch
    assert [r["batch"] for r in records] == [0, 1, 2]
    assert sorted(i for r in records for i in r["index"]) == list(range(12))


def test_a_resume_with_another_loader_accepted_starts_the_next_epoch(preempted, tmp_path, caplog) -> None:
    extra = ["--data.init_args.batch_size=8", ACCEPT, "--trainer.callbacks.accept_new_loader=true"]
    code, records = _resume(preempted, tmp_path, lambda data: None, *extra)
    assert code == 0
    assert [(r["epoch"], r["batch"], len(r["index"])) for r in records] == [(2, 0, 8), (2, 1, 8)]


def test_every_entry_of_the_identity_is_compared_and_named() -> None:
    saved = {
        "data_root": "/a",
        "files": {"annotations/train.csv": "10 bytes, sha256 aa"},
        "classes": ["x", "y"],
        "videos": 4,
        "video_list": "sha256 aa",
        "batch_size": 8,
        "num_workers": 2,
        "clips_per_video": 1,
        "world_size": 8,
        "seed": 0,
        "seed_everything": 0,
    }
    assert differences(saved, dict(saved)) == []
    now = {
        **saved,
        "files": {"annotations/train.csv": "12 bytes, sha256 bb"},
        "classes": ["x", "z"],
        "world_size": 16,
        "clips_per_video": 2,
    }
    assert differences(saved, now) == [
        ("data", "annotations/train.csv is 12 bytes, sha256 bb (checkpoint: 10 bytes, sha256 aa)"),
        ("data", "the class list (1 added ['z'], 1 removed ['y'])"),
        ("loader", "clips_per_video is 2 (checkpoint: 1)"),
        ("loader", "world_size is 16 (checkpoint: 8)"),
    ]
    assert differences({"batch_size": 8}, now) == []  # an entry the checkpoint lacks is not compared
    renamed = {**saved, "video_list": "sha256 bb"}
    assert differences(saved, renamed) == [
        ("data", "the training videos (as many, but other files, labels or order)")
    ]
    fewer = {**renamed, "videos": 3}
    assert differences(saved, fewer) == [("data", "videos is 3 (checkpoint: 4)")]  # the count says it


def test_a_resume_on_another_number_of_devices_names_the_world_size() -> None:
    from types import SimpleNamespace

    from videoswinv2.data.run_identity import CHECKPOINT_KEY, RunIdentity
    from videoswinv2.errors import UsageError

    saved = {"data_root": "/d", "batch_size": 8, "world_size": 8, "seed": 0}
    now = {**saved, "world_size": 16}  # the run rescheduled on 2 nodes instead of 1
    trainer = SimpleNamespace(
        datamodule=SimpleNamespace(run_identity=lambda: now, drop_loader_position=lambda: None),
        state=SimpleNamespace(fn="fit"),
        is_global_zero=True,
    )
    checkpoint = {CHECKPOINT_KEY: saved}
    with pytest.raises(UsageError, match=r"world_size is 16 \(checkpoint: 8\).*accept_new_loader true"):
        RunIdentity().on_load_checkpoint(trainer, None, checkpoint)
    trainer.state.fn = "test"  # testing a checkpoint on other devices is no resume
    RunIdentity().on_load_checkpoint(trainer, None, checkpoint)
