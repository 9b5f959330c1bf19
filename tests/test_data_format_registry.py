"""A dataset format added as one file (``tsv_format.py``) plus one registry entry is read by name
and by ``auto``, and trains through ``videoswinv2 fit``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import tsv_format
from conftest import REPO

from videoswinv2.cli import main
from videoswinv2.data import (
    SYNTHETIC_CLASSES,
    dataset_classes,
    detect_format,
    read_annotations,
    register_format,
)
from videoswinv2.data.formats import FORMATS


@pytest.fixture
def tsv_registered():
    register_format(tsv_format.FORMAT)  # the one registry entry
    yield
    del FORMATS["tsv"]


def _write_tsv(synthetic_root: Path, folder: Path, split: str) -> Path:
    """The synthetic dataset's ``split`` as ``folder/<split>.tsv``: ``<class>\\t<split>/<file>``."""
    with (synthetic_root / "annotations" / f"{split}.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    stems = [f"{r['youtube_id']}_{int(r['time_start']):06d}_{int(r['time_end']):06d}" for r in rows]
    path = folder / f"{split}.tsv"
    path.write_text("".join(f"{r['label']}\t{split}/{stem}.mp4\n" for r, stem in zip(rows, stems)))
    return path


def test_a_registered_format_is_read_by_name_and_by_auto(tsv_registered, data_synthetic_root, tmp_path):
    train = _write_tsv(data_synthetic_root, tmp_path, "train")
    assert detect_format(train) == "tsv"
    classes = dataset_classes(train)
    assert classes == sorted(SYNTHETIC_CLASSES)
    videos = read_annotations(train, data_synthetic_root, classes, "tsv").videos
    assert len(videos) == 16 and all(Path(v.path).is_file() for v in videos)
    assert {classes[v.label] for v in videos} == set(SYNTHETIC_CLASSES)


def _options(section: str, settings: dict[str, str]) -> list[str]:
    return [part for key, value in settings.items() for part in (f"--{section}.{key}", value)]


# configs/smoke.yaml, smaller: 8 frames of 32 px, no synthetic data written.
SMOKE = ["-c", str(REPO / "configs" / "smoke.yaml"), "--trainer.enable_progress_bar", "false"]
SMALL = {"synthetic": "null", "num_workers": "0", "num_frames": "8", "batch_size": "4"}
SMALL |= {"train_crop_size": "32", "val_short_side": "32", "val_crop_size": "32"}


def test_a_registered_format_trains_through_fit(tsv_registered, data_synthetic_root, tmp_path, capsys):
    for split in ("train", "val"):
        _write_tsv(data_synthetic_root, tmp_path, split)
    data = {
        **SMALL,
        "data_root": str(tmp_path),  # the .tsv files
        "video_dir": str(data_synthetic_root),
        "train_annotations": "train.tsv",
        "val_annotations": "val.tsv",
        "annotation_format": "tsv",
    }
    trainer = {"max_epochs": "1", "limit_train_batches": "2", "limit_val_batches": "1"}
    trainer |= {"logger": "lightning.pytorch.loggers.CSVLogger", "logger.save_dir": str(tmp_path)}
    assert main(["fit", *SMOKE, *_options("data.init_args", data), *_options("trainer", trainer)]) == 0
    run = tmp_path / "smoke" / "version_0"
    assert f"latest checkpoint: {run / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().out
    metrics = list(csv.DictReader((run / "metrics.csv").open()))
    assert [row["train/loss_epoch"] != "" for row in metrics].count(True) == 1  # one epoch trained
    assert [row["val/top1"] != "" for row in metrics].count(True) == 1  # on the tsv's val split too


def test_an_unregistered_format_is_a_one_line_error_naming_the_option(tmp_path, capsys):
    (tmp_path / "train.tsv").write_text("")
    data = {**SMALL, "data_root": str(tmp_path), "annotation_format": "tsv"}
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *SMOKE, *_options("data.init_args", data)])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "annotation_format" in line and "must be one of" in line and "'tsv'" in line
