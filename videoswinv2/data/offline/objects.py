"""A small synthetic multi-label dataset, for tests and demos: which objects a video shows.

Each video shows 1 to 3 of the :data:`OBJECT_KINDS` (a cross, a disc, a horizontal bar, a filled
square, each in its own colour: yellow, green, blue, red), each in its own quarter of the frame,
on a dark noisy background, drifting slowly, for the whole video. Every kind is in about half the
videos; a video shows 1, 2 or 3 kinds equally often. Layout (``multilabel_csv``): ``classes.txt``,
``annotations/{split}.csv`` (``video,labels``: ``train/0003.mp4,cross;disc``) and
``{split}/<id>.mp4``.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from videoswinv2.data.offline.synthetic import SPLITS, check_video_settings, staged_folder, write_mp4

OBJECT_KINDS = ("cross", "disc", "horizontal bar", "square")  # sorted: the CSV's own class order
# Each kind's colour (RGB, 0..1; a little darker in some videos). From shape alone a tiny model
# learned slowly (val mAP 0.72 after 200 steps of 8 videos; 0.93 with these colours).
_COLOURS = np.array([(1.0, 0.9, 0.2), (0.3, 1.0, 0.3), (0.3, 0.5, 1.0), (1.0, 0.25, 0.2)])
# The kind subsets of each size, drawn in turn so that every kind is in as many videos.
_SUBSETS = {k: list(itertools.combinations(range(len(OBJECT_KINDS)), k)) for k in (1, 2, 3)}


@dataclass(frozen=True)
class ObjectSpec:
    """What :func:`make_object_dataset` writes; the defaults (288 videos) take about 3 s.

    Args:
        train_videos: videos in the training split.
        val_videos: videos in the validation split.
        test_videos: videos in the test split.
        num_frames: frames per video.
        size: frame height and width in pixels (even; objects are a quarter to a third of it,
            the bar half as thick as it is long).
        fps: frame rate written into the files.
        seed: seed of everything random (kinds, places, colours, motion, noise).
    """

    train_videos: int = 192
    val_videos: int = 48
    test_videos: int = 48
    num_frames: int = 16
    size: int = 48
    fps: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        check_video_settings(self)

    @property
    def classes(self) -> list[str]:
        return list(OBJECT_KINDS)

    @property
    def per_split(self) -> dict[str, int]:
        return {split: getattr(self, f"{split}_videos") for split in SPLITS}


def _coverage(kind: int, dx: np.ndarray, dy: np.ndarray, half: float) -> np.ndarray:
    """How much of each pixel (0..1, edges anti-aliased) the shape covers, at offsets ``dx, dy``
    from its centre; the signed distance to its edge, clipped, is close enough."""

    def box(width: float, height: float) -> np.ndarray:
        return np.maximum(np.abs(dx) - width, np.abs(dy) - height)

    distance = {
        "cross": lambda: np.minimum(box(half, 0.3 * half), box(0.3 * half, half)),
        "disc": lambda: np.hypot(dx, dy) - half,
        "horizontal bar": lambda: box(half, 0.55 * half),
        "square": lambda: box(0.85 * half, 0.85 * half),  # about the disc's area
    }[OBJECT_KINDS[kind]]()
    return np.clip(0.5 - distance, 0.0, 1.0)


def render_objects(
    kinds: tuple[int, ...], num_frames: int, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Frames of a video showing ``kinds`` (indices into :data:`OBJECT_KINDS`) -> ``(T, H, W, 3)``
    uint8. Each object keeps to its quarter of the frame: no object hides another."""
    background = rng.uniform(10, 60, 3)
    frames = background + rng.normal(0, 6, (num_frames, size, size, 3))
    t = np.arange(num_frames)[:, None, None] - (num_frames - 1) / 2
    y, x = np.mgrid[:size, :size] + 0.5
    for kind, quarter in zip(kinds, rng.permutation(4)):
        half = rng.uniform(0.125, 0.16) * size
        # Start off-centre and drift: the object stays within 0.24 * size of its quarter's centre.
        centre = (np.array(divmod(quarter, 2)) + 0.5) * size / 2 + rng.uniform(-0.04, 0.04, 2) * size
        velocity = rng.normal(0, 1, 2)
        velocity *= rng.uniform(0, 0.04) * size / np.linalg.norm(velocity) / max((num_frames - 1) / 2, 1)
        dy, dx = y - centre[0] - velocity[0] * t, x - centre[1] - velocity[1] * t
        colour = _COLOURS[kind] * rng.uniform(0.75, 1.0)
        alpha = _coverage(kind, dx, dy, half)[..., None]
        frames = frames * (1 - alpha) + 255 * colour * alpha
    return np.clip(frames, 0, 255).astype(np.uint8)


def _kind_sets(count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """``count`` kind sets: sizes 1, 2, 3 in turn, each size's subsets in shuffled rounds."""
    rounds: dict[int, list[tuple[int, ...]]] = {k: [] for k in _SUBSETS}
    chosen = []
    for i in range(count):
        k = i % 3 + 1
        if not rounds[k]:
            rounds[k] = [_SUBSETS[k][j] for j in rng.permutation(len(_SUBSETS[k]))]
        chosen.append(rounds[k].pop())
    return [chosen[j] for j in rng.permutation(count)]


def make_object_dataset(out: str | Path, spec: ObjectSpec | None = None) -> Path:
    """Write the object dataset of ``spec`` (default ``ObjectSpec()``) into the new or empty
    directory ``out``, whole or nothing. Returns it."""
    spec = spec or ObjectSpec()
    out = Path(out)
    rng = np.random.default_rng(spec.seed)
    total = sum(spec.per_split.values())
    with staged_folder(out) as staging, tqdm(total=total, desc=f"writing {out}", unit="video") as progress:
        (staging / "annotations").mkdir()
        (staging / "classes.txt").write_text("\n".join(OBJECT_KINDS) + "\n", encoding="utf-8")
        for split, count in spec.per_split.items():
            (staging / split).mkdir()
            rows = []
            for number, kinds in enumerate(_kind_sets(count, rng)):
                video = f"{split}/{number:04d}.mp4"
                write_mp4(staging / video, render_objects(kinds, spec.num_frames, spec.size, rng), spec.fps)
                rows.append([video, ";".join(OBJECT_KINDS[k] for k in sorted(kinds))])
                progress.update()
            with (staging / "annotations" / f"{split}.csv").open("w", newline="") as file:
                csv.writer(file).writerows([["video", "labels"], *rows])
    return out
