"""``videoswinv2 extract-features INPUT ... --ckpt CKPT --output DIR``: backbone features of
videos, one ``.npy`` per video under DIR and ``DIR/index.csv`` (see
``videoswinv2.inference.writers.FeatureWriter``); a re-run skips videos whose files exist."""

from __future__ import annotations

import argparse

from videoswinv2.commands._inference import add_inference_arguments, prepare, run_tasks
from videoswinv2.inference.writers import FeatureWriter

PROG = "videoswinv2 extract-features"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_inference_arguments(parser)
    parser.add_argument("--output", required=True, help="folder for the .npy files and index.csv")
    parser.add_argument("--per-view", action="store_true", help="keep one row per view: (V, C') per video")
    parser.add_argument(
        "--feature-map",
        action="store_true",
        help="save the (C', T', H', W') feature maps instead of the pooled vectors (large)",
    )


def run(args: argparse.Namespace) -> int:
    writer = FeatureWriter(
        args.output, per_view=args.per_view, feature_map=args.feature_map, progress=not args.no_progress
    )
    setup = prepare(args, need_head=False)
    settings = setup.settings(per_view=args.per_view, feature_map=args.feature_map)
    done = writer.prepare(settings, overwrite=args.overwrite)
    return run_tasks(PROG, args, setup, writer, done, str(writer.index.path))
