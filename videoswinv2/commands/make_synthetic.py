"""``videoswinv2 make-synthetic OUT``: write the synthetic motion dataset in the Kinetics layout."""

from __future__ import annotations

import argparse
from dataclasses import fields

from videoswinv2.data.offline.synthetic import (
    SPLITS,
    SYNTHETIC_CLASSES,
    SyntheticSpec,
    make_synthetic_dataset,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``videoswinv2 make-synthetic OUT ...``; defaults from :class:`SyntheticSpec`."""
    defaults = SyntheticSpec()
    parser.add_argument("out", help="new or empty directory to write the dataset into")
    parser.add_argument(
        "--num-classes",
        type=int,
        default=defaults.num_classes,
        help=f"2..{len(SYNTHETIC_CLASSES)}, the first of: {', '.join(SYNTHETIC_CLASSES)}",
    )
    for split in SPLITS:
        parser.add_argument(
            f"--{split}-per-class",
            type=int,
            default=getattr(defaults, f"{split}_per_class"),
            help=f"videos per class in the {split} split",
        )
    parser.add_argument("--num-frames", type=int, default=defaults.num_frames, help="frames per video")
    parser.add_argument("--size", type=int, default=defaults.size, help="frame height and width (even)")
    parser.add_argument("--fps", type=int, default=defaults.fps, help="frame rate written into the files")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of everything random")


def run(args: argparse.Namespace) -> int:
    """Write the dataset and print where it went."""
    spec = SyntheticSpec(**{field.name: getattr(args, field.name) for field in fields(SyntheticSpec)})
    out = make_synthetic_dataset(args.out, spec)  # a UsageError into a non-empty folder
    total = sum(spec.per_split.values()) * spec.num_classes
    print(f"wrote {total} videos of {spec.num_classes} classes to {out}")
    return 0
