"""A small synthetic action dataset in the Kinetics layout, for tests and smoke runs.

Each video shows a random smooth colour pattern (a sum of plane waves) sliding up or down, slowly
or quickly (:data:`SYNTHETIC_CLASSES`). Partners are the same frames in reverse order and the
pattern is stationary, so no single frame tells the classes apart; the motion, over every pixel,
does, and a small model learns it in a few hundred steps. Labels survive flips and the default
random resized crops (the speed ranges stay apart under up to 1.6x magnification). Layout: the
CVDF Kinetics downloads' (``classes.txt``, ``annotations/{split}.csv``, ``{split}/*.mp4``).
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from tqdm.auto import tqdm

from videoswinv2.data.formats.kinetics_csv import KINETICS_CSV_COLUMNS, kinetics_file_stem
from videoswinv2.errors import UsageError

SYNTHETIC_CLASSES = ("moving down slowly", "moving up slowly", "moving down quickly", "moving up quickly")
# Pixels per frame at 64 px (scaled with the frame size), per pair of classes.
_SPEEDS = ((0.3, 0.7), (1.5, 2.5))
_NUM_WAVES = 8
SPLITS = ("train", "val", "test")
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


def check_video_settings(spec: Any) -> None:
    """A ``UsageError`` for a generated dataset's video settings that cannot be written: its
    ``size``, ``num_frames``, ``fps`` and videos ``per_split``."""
    if spec.size < 16 or spec.size % 2:
        raise UsageError(f"size must be even and >= 16 (H.264 4:2:0), got {spec.size}")
    if spec.num_frames < 2 or spec.fps < 1 or min(spec.per_split.values()) < 1:
        raise UsageError(f"need >= 2 frames, fps >= 1 and >= 1 video per split: {spec}")


@dataclass(frozen=True)
class SyntheticSpec:
    """What :func:`make_synthetic_dataset` writes; the defaults (144 videos) take about 9 s.

    Args:
        num_classes: the first 2-4 of :data:`SYNTHETIC_CLASSES`.
        train_per_class: training videos per class.
        val_per_class: validation videos per class.
        test_per_class: test videos per class.
        num_frames: frames per video.
        size: frame height and width in pixels (even).
        fps: frame rate written into the files.
        seed: seed of everything random (ids, shapes, colours, motion).
    """

    num_classes: int = 4
    train_per_class: int = 24
    val_per_class: int = 6
    test_per_class: int = 6
    num_frames: int = 32
    size: int = 64
    fps: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(SYNTHETIC_CLASSES):
            raise UsageError(f"num_classes must be in [2, {len(SYNTHETIC_CLASSES)}]")
        check_video_settings(self)

    @property
    def classes(self) -> list[str]:
        return list(SYNTHETIC_CLASSES[: self.num_classes])

    @property
    def per_split(self) -> dict[str, int]:
        return {split: getattr(self, f"{split}_per_class") for split in SPLITS}


def render_video(label: int, num_frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Frames of one video of class ``SYNTHETIC_CLASSES[label]`` -> ``(T, H, W, 3)`` uint8.

    Partners (labels 2k and 2k+1) draw the same random numbers and differ only in time order.
    """
    pair, reverse = divmod(label, 2)
    # Wavelengths of a quarter to three quarters of the frame: the fastest motion, 5 px between
    # the frames of a clip with interval 2, stays under half a wavelength (no aliasing).
    wavelength = np.exp(rng.uniform(np.log(0.25 * size), np.log(0.75 * size), _NUM_WAVES))
    angle = rng.uniform(0, 2 * np.pi, _NUM_WAVES)
    phase = rng.uniform(0, 2 * np.pi, _NUM_WAVES)
    amplitude = rng.normal(0, 30, (_NUM_WAVES, 3))
    speed = rng.uniform(*_SPEEDS[pair]) * size / 64
    coords = np.arange(size) + 0.5
    x, y = np.meshgrid(coords, coords)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for k in range(num_frames):
        # The pattern at time k is the pattern at time 0 shifted down by speed * k pixels.
        arg = (x[..., None] * np.cos(angle) + (y[..., None] - speed * k) * np.sin(angle)) / wavelength
        frames[k] = np.clip(128 + np.cos(2 * np.pi * arg + phase) @ amplitude, 0, 255)
    return frames[::-1].copy() if reverse else frames


def write_mp4(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames as H.264 mp4 (yuv420p, crf 18): the same file
    from the same frames."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        # Without mbtree: with it libx264 encoded the same frames differently from run to run
        # (measured: 1 to 19 of 30 short videos, 32-64 px, differed in 3 runs; none without).
        stream.options = {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A sibling of the new or empty directory ``out`` to write a dataset into, renamed to ``out``
    when the block ends without an error and removed otherwise: whole or nothing."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory: choose a new or empty folder")
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_synthetic_dataset(out: str | Path, spec: SyntheticSpec | None = None) -> Path:
    """Write the synthetic dataset of ``spec`` (default ``SyntheticSpec()``) into the new or empty
    directory ``out``, through a sibling folder renamed into place: whole or nothing. Returns it."""
    spec = spec or SyntheticSpec()
    out = Path(out)
    rng = np.random.default_rng(spec.seed)
    total = sum(spec.per_split.values()) * spec.num_classes
    with staged_folder(out) as staging, tqdm(total=total, desc=f"writing {out}", unit="video") as progress:
        (staging / "annotations").mkdir()
        (staging / "classes.txt").write_text("\n".join(spec.classes) + "\n", encoding="utf-8")
        for split, per_class in spec.per_split.items():
            (staging / split).mkdir()
            rows = []
            for label, name in enumerate(spec.classes):
                for _ in range(per_class):
                    youtube_id = "".join(rng.choice(_ID_ALPHABET, 11))
                    start = int(rng.integers(0, 300))
                    end = start + 10
                    frames = render_video(label, spec.num_frames, spec.size, rng)
                    stem = kinetics_file_stem(youtube_id, start, end)
                    write_mp4(staging / split / f"{stem}.mp4", frames, spec.fps)
                    progress.update()
                    rows.append([name, youtube_id, start, end, split])
            with (staging / "annotations" / f"{split}.csv").open("w", newline="") as file:
                writer = csv.writer(file)
                writer.writerow([*KINETICS_CSV_COLUMNS, "split"])
                writer.writerows(rows)
    return out
