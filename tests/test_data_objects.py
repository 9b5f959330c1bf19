"""The synthetic object dataset: read back as ``multilabel_csv`` by ``auto``, videos that show
exactly the kinds their row lists, balanced kind sets, the same files from the same seed."""

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from videoswinv2.cli import main
from videoswinv2.data import (
    OBJECT_KINDS,
    ObjectSpec,
    dataset_classes,
    detect_format,
    make_object_dataset,
    open_video,
    read_annotations,
    read_class_names,
)
from videoswinv2.data.formats import is_multi_label
from videoswinv2.data.offline.objects import _COLOURS

SMALL = ObjectSpec(train_videos=24, val_videos=3, test_videos=3, num_frames=4)


@pytest.fixture(scope="module")
def objects_root(tmp_path_factory) -> Path:
    return make_object_dataset(tmp_path_factory.mktemp("objects") / "data", SMALL)


def _kinds_shown(frame: np.ndarray) -> set[int]:
    """The kinds whose colour covers at least 12 pixels of an ``(H, W, 3)`` uint8 frame."""
    rgb = frame.astype(np.float64)
    bright = rgb.max(-1) > 150
    shade = rgb / np.maximum(rgb.max(-1, keepdims=True), 1)
    near = np.abs(shade[:, :, None] - _COLOURS / _COLOURS.max(-1, keepdims=True)).max(-1) < 0.15
    return {kind for kind in range(len(OBJECT_KINDS)) if (near[:, :, kind] & bright).sum() >= 12}


def test_read_back_by_auto_with_the_kinds_each_video_shows(objects_root: Path) -> None:
    assert read_class_names(objects_root / "classes.txt") == list(OBJECT_KINDS) == SMALL.classes
    for split, count in SMALL.per_split.items():
        source = objects_root / "annotations" / f"{split}.csv"
        assert detect_format(source) == "multilabel_csv" and is_multi_label(source)
        videos = read_annotations(source, objects_root, list(OBJECT_KINDS), "auto", split).videos
        assert len(videos) == count and all(v.path.startswith(str(objects_root / split)) for v in videos)
        for video in videos:
            with open_video(video.path) as reader:
                assert (reader.num_frames, reader.fps) == (4, 25.0)
                frames = reader.read([0, 3]).numpy()
            assert frames.shape == (2, 48, 48, 3)
            assert all(_kinds_shown(frame) == set(video.target) for frame in frames), video
    # The CSV's classes (its names, sorted) are the class file's, in the same order.
    assert dataset_classes(objects_root / "annotations" / "train.csv") == list(OBJECT_KINDS)


def test_kind_sets_are_balanced(objects_root: Path) -> None:
    with (objects_root / "annotations" / "train.csv").open(newline="") as file:
        sets = [row["labels"].split(";") for row in csv.DictReader(file)]
    assert Counter(len(s) for s in sets) == {1: 8, 2: 8, 3: 8}
    per_kind = Counter(name for s in sets for name in s)
    assert set(per_kind) == set(OBJECT_KINDS) and all(11 <= n <= 13 for n in per_kind.values()), per_kind


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_the_same_files(objects_root: Path, tmp_path: Path) -> None:
    assert _files(make_object_dataset(tmp_path / "again", SMALL)) == _files(objects_root)
    other = _files(make_object_dataset(tmp_path / "other", ObjectSpec(**{**SMALL.__dict__, "seed": 1})))
    assert other.keys() == _files(objects_root).keys() and other != _files(objects_root)


def test_command_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    sizes = ["--train-videos", "2", "--val-videos", "1", "--test-videos", "1", "--num-frames", "2"]
    assert main(["make-synthetic", str(out), "--objects", *sizes, "--size", "16"]) == 0
    assert f"wrote 4 videos of 4 object kinds to {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["annotations", "classes.txt", "test", "train", "val"]
    assert main(["make-synthetic", str(tmp_path / "x"), "--objects", "--num-classes", "2"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: --num-classes is an option of the motion dataset, without --objects\n"
    )
    assert main(["make-synthetic", str(tmp_path / "x"), "--train-videos", "2"]) == 2
    assert "--train-videos is an option of the object dataset, with --objects" in capsys.readouterr().err
