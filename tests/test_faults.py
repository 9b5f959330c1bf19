"""Faults a user can cause, one case each: the command, its exit code, the key words of its last
line, no traceback, and every file that was there before byte-identical afterwards.

Faults that need a process of their own are tested beside what they exercise: Ctrl-C and SIGTERM
in ``fit`` (test_preemption.py), a kill -9 during a checkpoint write (test_files.py), a resume on
other data or another loader (test_run_identity.py), Ctrl-C in ``predict`` (test_outputs.py).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from videoswinv2.cli import main

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke.yaml")
SMOKE_PRETRAIN = str(REPO / "configs" / "smoke_pretrain.yaml")
QUICK_FIT = ["--data.init_args.num_workers", "0", "--trainer.logger", "false", "--trainer.max_epochs", "1"]
QUICK_FIT += ["--trainer.enable_progress_bar", "false", "--data.init_args.synthetic", "null"]


@dataclass(frozen=True)
class Fault:
    """``build(tmp_path, fixtures)`` lays out the case and returns the command line; it ends with
    ``code`` and a last line of stderr matching ``words`` (a regular expression)."""

    build: Callable[[Path, Callable[[str], object]], list[str]]
    code: int
    words: str
    reads_smoke_run: bool = False  # through its fixture getter: grouped with the tests that read it


def _data_root_is_a_file(tmp: Path, fixture) -> list[str]:
    (tmp / "videos.txt").write_text("my notes\n")  # with the smoke config's synthetic default on
    return [
        "fit",
        "-c",
        SMOKE,
        "--data.init_args.data_root",
        str(tmp / "videos.txt"),
        "--trainer.logger",
        "false",
    ]


def _reversed_train_scale(tmp: Path, fixture) -> list[str]:
    return ["fit", "-c", SMOKE, "--data.init_args.train_scale", "[1.0, 0.0]"]


def _hmdb51_class_without_split_file(tmp: Path, fixture) -> list[str]:
    splits = tmp / "testTrainMulti_7030_splits"
    splits.mkdir()
    for name in ("brush_hair", "cartwheel", "wave"):
        (tmp / name).mkdir()
        (tmp / name / f"{name}_a.avi").write_bytes(b"")
        for split in (1, 2):
            (splits / f"{name}_test_split{split}.txt").write_text(f"{name}_a.avi 1 \n")
    (splits / "cartwheel_test_split1.txt").unlink()  # its folder and split 2 file are there
    sources = ["--data.init_args.train_annotations", str(splits), "--data.init_args.val_annotations", "null"]
    return ["fit", "-c", SMOKE, "--data.init_args.data_root", str(tmp), *sources, *QUICK_FIT]


def _empty_class_folder(tmp: Path, fixture) -> list[str]:
    for name in ("running", "waving", "jumping"):
        (tmp / "train" / name).mkdir(parents=True)
    (tmp / "train" / "running" / "a.mp4").write_bytes(b"")
    (tmp / "train" / "waving" / "nested" / "deeper").mkdir(parents=True)
    (tmp / "train" / "waving" / "nested" / "deeper" / "b.mp4").write_bytes(b"")  # read: not empty
    sources = ["--data.init_args.train_annotations", "train", "--data.init_args.val_annotations", "null"]
    return ["fit", "-c", SMOKE, "--data.init_args.data_root", str(tmp), *sources, *QUICK_FIT]


def _class_without_training_videos(tmp: Path, fixture) -> list[str]:
    root = fixture("data_synthetic_root")
    (tmp / "classes.txt").write_text((root / "classes.txt").read_text() + "juggling\n")
    data = [
        "--data.init_args.data_root",
        str(root),
        "--data.init_args.class_names_file",
        str(tmp / "classes.txt"),
    ]
    return ["fit", "-c", SMOKE, *data, *QUICK_FIT]


def _mask_units_that_do_not_fit(tmp: Path, fixture) -> list[str]:
    data = ["--data.init_args.data_root", str(fixture("data_synthetic_root"))]
    clips = ["--data.init_args.num_frames", "2", "--data.init_args.train_crop_size", "8"]
    return ["fit", "-c", SMOKE_PRETRAIN, *data, *clips, *QUICK_FIT]


def _last_checkpoint_cut_short(tmp: Path, fixture) -> list[str]:
    folder = tmp / "smoke" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"step": 4}, folder / "epoch=0-step=4.ckpt")
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")
    return ["fit", "-c", SMOKE, "--ckpt_path", "last", "--trainer.logger.init_args.save_dir", str(tmp)]


def _all_videos_broken(workers: str) -> Callable:
    def build(tmp: Path, fixture) -> list[str]:
        broken = [p for p in fixture("data_broken_videos").values() if p.exists()]
        for k, path in enumerate(broken):
            folder = tmp / "train" / ("waving", "running")[k % 2]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / f"{k}.mp4")
        sources = ["--data.init_args.train_annotations", "train", "--data.init_args.val_annotations", "null"]
        sources += ["--data.init_args.test_annotations", "null"]
        fit = ["fit", "-c", SMOKE, "--data.init_args.data_root", str(tmp), *sources, *QUICK_FIT]
        return [*fit, "--data.init_args.num_workers", workers]  # from a worker, wrapped in its traceback

    return build


def _timeline_seconds(option: str, value: str) -> Callable:
    def build(tmp: Path, fixture) -> list[str]:  # refused before the video or checkpoint is read
        args = ["timeline", str(tmp / "v.mp4"), "--ckpt", str(tmp / "c.ckpt"), "--stride-seconds", "1"]
        return [*args, option, value]

    return build


def _unwritable_output(command: str) -> Callable:
    def build(tmp: Path, fixture) -> list[str]:
        def read_only(*args, **kwargs):
            raise OSError(30, "Read-only file system")

        fixture("monkeypatch").setattr(tempfile, "TemporaryFile", read_only)
        # export writes into an existing folder, the others make theirs; the checkpoint does not
        # exist: the output is refused before the model is read.
        output = tmp / "model.onnx" if command == "export" else tmp / "out" / "rows.csv"
        args = {"timeline": ["v.mp4", "--stride-seconds", "1"], "predict": ["v.mp4"], "export": []}[command]
        return [command, *args, "--ckpt", str(tmp / "none.ckpt"), "--output", str(output)]

    return build


def _user_files_beside_the_output(command: str) -> Callable:
    def build(tmp: Path, fixture) -> list[str]:
        smoke_run = fixture("smoke_run")
        video = sorted((smoke_run["root"] / "data" / "test").rglob("*.mp4"))[0]
        shutil.copy(video, tmp / "v.mp4")
        for name in ("out.csv.rank-notes.txt", "out.csv.ranking.txt", "out.csv.rank1"):
            (tmp / name).write_text("the user's notes\n")
        args = {"timeline": ["--stride-seconds", "1"], "predict": ["--views", "1"]}[command]
        common = ["--ckpt", str(smoke_run["ckpt"]), "--no-progress", "--num-workers", "0"]
        return [command, str(tmp / "v.mp4"), *args, *common, "--output", str(tmp / "out.csv")]

    return build


FAULTS = {
    "data_root is a file": Fault(
        _data_root_is_a_file, 2, r"error: data_root .*videos\.txt is a file: name the folder"
    ),
    "reversed train_scale": Fault(
        _reversed_train_scale,
        2,
        r"--data\.init_args\.train_scale: train_scale must be \(min, max\) .* got \[1\.0, 0\.0\]",
    ),
    "HMDB51 class without its split file": Fault(
        _hmdb51_class_without_split_file, 2, r"cartwheel_test_split1\.txt missing, while other splits' files"
    ),
    "empty class folder": Fault(_empty_class_folder, 2, r"class folder\(s\) 'jumping' hold no videos"),
    "class without training videos": Fault(
        _class_without_training_videos,
        2,
        r"1 of 5 classes have no training video in .*train\.csv: 'juggling'",
    ),
    "mask units that do not fit": Fault(
        _mask_units_that_do_not_fit,
        2,
        r"a cube mask needs at least 2 units to choose from, the clip has 1x1x1",
    ),
    "last.ckpt cut short": Fault(
        _last_checkpoint_cut_short,
        2,
        r"last\.ckpt cannot be read \(cut short while it was written\?\): resume from the newest readable "
        r"checkpoint of the run with --ckpt_path .*epoch=0-step=4\.ckpt$",
    ),
    **{
        f"all videos broken, {workers} workers": Fault(
            _all_videos_broken(workers),
            1,
            r"^videoswinv2: error: 51 videos in a row failed to decode \([1-4] distinct files, e\.g\. .+\): "
            r"check the data root and the decoder$",
        )
        for workers in ("0", "1")
    },
    **{
        f"timeline {option} {value}": Fault(_timeline_seconds(option, value), 2, f"{option}.*{words}")
        for option, value, words in [
            ("--stride-seconds", "inf", "must be a finite number"),
            ("--stride-seconds", "nan", "must be a finite number"),
            ("--stride-seconds", "0", "must be > 0"),
            ("--min-segment-seconds", "inf", "must be a finite number"),
            ("--min-segment-seconds", "nan", "must be a finite number"),
            ("--min-segment-seconds", "-3", "must be >= 0"),
        ]
    },
    **{
        f"{command} into a read-only folder": Fault(
            _unwritable_output(command), 2, r"--output .*: cannot write into .* \(Read-only file system\)$"
        )
        for command in ("timeline", "predict", "export")
    },
    **{
        f"{command} beside the user's out.csv.rank* files": Fault(
            _user_files_beside_the_output(command), 0, r"1 videos done, 0 failed", reads_smoke_run=True
        )
        for command in ("timeline", "predict")
    },
}


def _files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(fault, id=name, marks=[pytest.mark.xdist_group("smoke_run")] * fault.reads_smoke_run)
        for name, fault in FAULTS.items()
    ],
)
def test_a_fault_ends_as_promised_and_touches_no_file(fault: Fault, tmp_path, request, capsys) -> None:
    argv = fault.build(tmp_path, request.getfixturevalue)
    before = _files(tmp_path)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == fault.code, err[-3000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.search(fault.words, last), last
    assert {path: _files(tmp_path).get(path) for path in before} == before  # nothing lost or changed


def test_an_error_inside_prediction_keeps_its_traceback(smoke_run, tmp_path, monkeypatch) -> None:
    """Not a setting to change: a CUDA out-of-memory (stood in for here) or a bug is not turned
    into a one-line 'usage' error; it propagates, so Python prints its traceback and exits 1."""
    import videoswinv2.commands._inference as inference_command

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (a stand-in)")

    monkeypatch.setattr(inference_command, "predict_videos", out_of_memory)
    video = sorted((smoke_run["root"] / "data" / "test").rglob("*.mp4"))[0]
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        main(["predict", str(video), "--ckpt", str(smoke_run["ckpt"]), "--output", str(tmp_path / "p.csv")])
