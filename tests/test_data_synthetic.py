"""The synthetic motion dataset: layout, readability, and classes that need motion."""

import argparse
import csv

import numpy as np
import pytest

from videoswinv2.data import (
    SYNTHETIC_CLASSES,
    SyntheticSpec,
    add_make_synthetic_arguments,
    open_video,
    read_annotations,
    read_class_names,
    run_make_synthetic,
)
from videoswinv2.data.synthetic import render_video


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


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
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


def _shape_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the shape's area and vertical position (a circular mean: it wraps around).

    The shape is the one flat colour in the rendered frame, so its pixels are those equal to
    the frame's most frequent colour (the background is noisy).
    """
    areas, rows = [], []
    for frame in frames:
        _, inverse, counts = np.unique(
            frame.reshape(-1, 3), axis=0, return_inverse=True, return_counts=True
        )
        mask = inverse.reshape(frame.shape[:2]) == counts.argmax()
        angle = 2 * np.pi * (np.nonzero(mask)[0] + 0.5) / frame.shape[0]
        rows.append(
            np.angle(np.exp(1j * angle).mean()) % (2 * np.pi) * frame.shape[0] / (2 * np.pi)
        )
        areas.append(mask.sum())
    return np.array(areas), np.array(rows)


def test_classes_differ_in_motion_and_not_in_single_frames() -> None:
    rng = np.random.default_rng(0)
    size, pooled = 48, {label: ([], []) for label in range(4)}
    for label in range(4):
        for _ in range(30):
            areas, rows = _shape_stats(render_video(label, 12, size, rng))
            drift = (np.diff(rows) + size / 2) % size - size / 2  # wrap-aware vertical steps
            growth = np.sign(np.diff(areas))
            if label == 0:  # moving down (pixel rounding makes single steps uneven)
                assert drift.mean() > 0.5 and (drift > -0.25).all()
            elif label == 1:  # moving up
                assert drift.mean() < -0.5 and (drift < 0.25).all()
            elif label == 2:  # approaching: grows, except where the sawtooth wraps
                assert (growth >= 0).mean() > 0.7
            else:  # receding
                assert (growth <= 0).mean() > 0.7
            pooled[label][0].extend(areas)
            pooled[label][1].extend(rows)
    # What one frame shows (shape size, height in the frame) is spread alike in every class.
    widths = {label: np.sqrt(pooled[label][0]) for label in range(4)}
    mean_width = np.mean([widths[label].mean() for label in range(4)])
    for label in range(4):
        assert abs(widths[label].mean() - mean_width) < 0.15 * mean_width
        assert abs(np.mean(pooled[label][1]) - size / 2) < 0.15 * size
        assert np.std(pooled[label][1]) > 0.2 * size  # positions spread over the frame


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticSpec(num_classes=5)
    with pytest.raises(ValueError, match="even"):
        SyntheticSpec(size=33)


def test_command_line_helpers(tmp_path, capsys) -> None:
    parser = add_make_synthetic_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        [
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
    )
    out = run_make_synthetic(args)
    assert "wrote 6 videos of 2 classes" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "annotations",
        "classes.txt",
        "test",
        "train",
        "val",
    ]
    assert len(list((out / "train").iterdir())) == 2
    with pytest.raises(FileExistsError):
        run_make_synthetic(args)
