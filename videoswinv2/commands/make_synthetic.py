"""``videoswinv2 make-synthetic OUT``: write the synthetic motion dataset in the Kinetics layout,
or with ``--objects`` the multi-label object dataset in the ``multilabel_csv`` layout."""

from __future__ import annotations

import argparse
from dataclasses import fields

from videoswinv2.data.offline.objects import OBJECT_KINDS, ObjectSpec, make_object_dataset
from videoswinv2.data.offline.synthetic import (
    SPLITS,
    SYNTHETIC_CLASSES,
    SyntheticSpec,
    make_synthetic_dataset,
)
from videoswinv2.errors import UsageError

_HELP = {
    "num_classes": f"2..{len(SYNTHETIC_CLASSES)}, the first of: {', '.join(SYNTHETIC_CLASSES)};",
    **{f"{split}_per_class": f"videos per class in the {split} split," for split in SPLITS},
    **{f"{split}_videos": f"videos in the {split} split," for split in SPLITS},
    "num_frames": "frames per video",
    "size": "frame height and width (even)",
    "fps": "frame rate written into the files",
    "seed": "seed of everything random",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``videoswinv2 make-synthetic OUT ...``; defaults from :class:`SyntheticSpec`
    and :class:`ObjectSpec`, each dataset's options only for it."""
    parser.add_argument("out", help="new or empty directory to write the dataset into")
    parser.add_argument(
        "--objects",
        action="store_true",
        help=f"the multi-label object dataset (1-3 of: {', '.join(OBJECT_KINDS)}) instead of the motion one",
    )
    motion, objects = SyntheticSpec(), ObjectSpec()
    for name, text in _HELP.items():
        given = {spec: getattr(spec, name) for spec in (motion, objects) if hasattr(spec, name)}
        if len(given) == 1:
            note = f"{'with' if objects in given else 'without'} --objects (default: {given.popitem()[1]})"
        elif given[motion] != given[objects]:
            note = f"(default: {given[motion]}; {given[objects]} with --objects)"
        else:
            note = f"(default: {given[motion]})"
        # No argparse default: `run` tells a value given from one not given.
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=argparse.SUPPRESS, help=f"{text} {note}"
        )


def run(args: argparse.Namespace) -> int:
    """Write the dataset and print where it went."""
    spec_class = ObjectSpec if args.objects else SyntheticSpec
    names = {field.name for field in fields(spec_class)}
    other = sorted(name for name in set(_HELP) - names if hasattr(args, name))
    if other:
        raise UsageError(
            f"--{other[0].replace('_', '-')} is an option of the {'motion' if args.objects else 'object'} "
            f"dataset, {'without' if args.objects else 'with'} --objects"
        )
    spec = spec_class(**{name: getattr(args, name) for name in names if hasattr(args, name)})
    total = sum(spec.per_split.values())
    if args.objects:
        out = make_object_dataset(args.out, spec)  # a UsageError into a non-empty folder
        print(f"wrote {total} videos of {len(OBJECT_KINDS)} object kinds to {out}")
    else:
        out = make_synthetic_dataset(args.out, spec)
        print(f"wrote {total * spec.num_classes} videos of {spec.num_classes} classes to {out}")
    return 0
