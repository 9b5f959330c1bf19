"""The synthetic motion dataset: layout, readability, and classes that need motion."""

import csv

import numpy as np
import pytest

from videoswinv2.cli import main
from videoswinv2.data import (
    SYNTHETIC_CLASSES,
    SyntheticSpec,
    open_video,
    read_annotations,
    read_class_names,
)
from videoswinv2.data.decoding import DECODERS
from videoswinv2.data.offline.synthetic import render_video


def test_layout_and_annotations(data_synthetic_root) -> None:
    root = data_synthetic_root
    classes = read_class_names(root / "classes.txt")
    assert classes == list(SYNTHETIC_CLASSES)
    for split, per_class in (("train", 4), ("val", 2), ("test", 2)):
        with (root / "annotations" / f"{split}.csv").open() as file:
            rows = list(csv.DictReader(file))
        assert {row["split"] for row in rows} == {split}
        assert all(len(row["youtube_id"]) == 11 for row in rows)
        annotations = read_annotations(root / "annotations" / f"{split}.csv", root, classes)
        assert annotations.missing == []
        assert sorted(v.label for v in annotations.videos) == sorted(list(range(4)) * per_class)
        assert all(v.path.startswith(str(root / split)) for v in annotations.videos)


@pytest.mark.parametrize("decoder", DECODERS)
def test_videos_decode_at_the_requested_size(decoder, data_synthetic_root) -> None:
    video = next((data_synthetic_root / "val").iterdir())
    with open_video(str(video), decoder) as reader:
        assert (reader.num_frames, reader.fps) == (16, 25.0)
        assert reader.read([0, 15]).shape == (2, 32, 32, 3)


@pytest.mark.parametrize("pair", [0, 1])
def test_partner_classes_are_the_same_frames_in_reverse(pair: int) -> None:
    forward = render_video(2 * pair, 24, 48, np.random.default_rng(7))
    backward = render_video(2 * pair + 1, 24, 48, np.random.default_rng(7))
    np.testing.assert_array_equal(forward[::-1], backward)
    assert not np.array_equal(forward, backward)  # the order is the only cue, and it is there


def _vertical_speed(frames: np.ndarray) -> float:
    """Least-squares vertical velocity (pixels per frame, + is down) from brightness constancy."""
    gray = frames.astype(np.float64).mean(-1)
    dy = (gray[:-1, 2:] - gray[:-1, :-2]) / 2
    dt = gray[1:, 1:-1] - gray[:-1, 1:-1]
    return float(-(dt * dy).sum() / (dy**2).sum())


def test_classes_differ_in_motion_and_not_in_single_frames() -> None:
    rng = np.random.default_rng(0)
    size = 48
    speed_ranges = {0: (0.3, 0.7), 1: (-0.7, -0.3), 2: (1.5, 2.5), 3: (-2.5, -1.5)}  # at 64 px
    contrast, detail = {}, {}
    for label, (low, high) in speed_ranges.items():
        videos = [render_video(label, 12, size, rng) for _ in range(30)]
        speeds = np.array([_vertical_speed(v) * 64 / size for v in videos])
        assert (speeds > low - 0.1).all() and (speeds < high + 0.1).all(), (label, speeds)
        contrast[label] = np.mean([v.std() for v in videos])
        detail[label] = np.mean([np.abs(np.diff(v.astype(np.float64), axis=2)).mean() for v in videos])
    # What one frame shows (contrast, fineness of the pattern) is spread alike in every class.
    for stat in (contrast, detail):
        mean = np.mean(list(stat.values()))
        assert all(abs(value - mean) < 0.15 * mean for value in stat.values()), stat


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticSpec(num_classes=5)
    with pytest.raises(ValueError, match="even"):
        SyntheticSpec(size=33)


def test_command_line_helpers(tmp_path, capsys) -> None:
    args = [
        str(tmp_path / "out"),
        "--num-classes",
        "2",
        "--train-per-class",
        "1",
        "--val-per-class",
        "1",
        "--test-per-class",
        "1",
        "--num-frames",
        "4",
        "--size",
        "16",
        "--seed",
        "3",
    ]
    assert main(["make-synthetic", *args]) == 0
    out = tmp_path / "out"
    assert f"wrote 6 videos of 2 classes to {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "annotations",
        "classes.txt",
        "test",
        "train",
        "val",
    ]
    assert len(list((out / "train").iterdir())) == 2
    assert main(["make-synthetic", *args]) == 2  # into a non-empty folder: one line, no traceback
    assert capsys.readouterr().err == (
        f"videoswinv2 make-synthetic: error: {out} exists and is not an empty directory: "
        "choose a new or empty folder\n"
    )
