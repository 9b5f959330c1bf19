"""``videoswinv2 predict INPUT ... --ckpt CKPT [--output FILE]``: top-k classes of many videos.

Each video is seen in its evaluation views (softmax averaged over them); rows go to a ``.csv`` or
``.jsonl`` file as videos finish, or to the terminal. A re-run with the same ``--output`` skips
the videos already there and retries those that failed.
"""

from __future__ import annotations

import argparse
import sys

from videoswinv2.commands._inference import (
    SETUP_ERRORS,
    add_inference_arguments,
    fail,
    positive_int,
    prepare,
    run_videos,
)
from videoswinv2.inference.writers import PredictionWriter

PROG = "videoswinv2 predict"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_inference_arguments(parser)
    parser.add_argument(
        "--classes", help="class names file, one per line (default: the checkpoint's, or Kinetics-400)"
    )
    parser.add_argument("--topk", type=positive_int, default=5, help="classes per video (default 5)")
    parser.add_argument("--output", help="write the rows to this .csv or .jsonl file instead of the terminal")


def run(args: argparse.Namespace) -> int:
    try:
        setup = prepare(args, need_head=True)
        writer = PredictionWriter(
            args.output, topk=args.topk, classes=setup.loaded.classes, progress=not args.no_progress
        )
    except SETUP_ERRORS as error:
        return fail(PROG, error)
    if setup.loaded.untrained_head:
        print(
            f"{PROG}: warning: {setup.loaded.untrained_head}; the class names below are not predictions "
            "until it is fine-tuned",
            file=sys.stderr,
        )
    return run_videos(PROG, args, setup, writer, args.output or "")
