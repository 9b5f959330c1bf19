"""``videoswinv2 predict INPUT ... --ckpt CKPT [--output FILE]``: top-k classes of many videos.

Each video is seen in its evaluation views (softmax averaged over them); rows go to a ``.csv`` or
``.jsonl`` file as videos finish, or to the terminal. A re-run with the same ``--output`` and
settings skips the videos already there and retries those that failed (see
``videoswinv2.inference.outputs`` for what is refused).
"""

from __future__ import annotations

import argparse

from videoswinv2.commands._inference import (
    add_inference_arguments,
    positive_int,
    prepare,
    run_tasks,
    warn_untrained,
)
from videoswinv2.data.view_stream import multi_view_tasks
from videoswinv2.inference.outputs import resolved
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
    writer = PredictionWriter(
        args.output, topk=args.topk, progress=not args.no_progress
    )  # checks --output first
    setup = prepare(args, need_head=True)
    writer.classes = setup.loaded.classes
    done = writer.prepare(setup.settings(topk=args.topk, classes=writer.classes), overwrite=args.overwrite)
    warn_untrained(PROG, setup)
    videos = [video for video in setup.videos if resolved(video) not in done]
    skipped = len(setup.videos) - len(videos)
    return run_tasks(
        PROG,
        args,
        setup,
        writer,
        multi_view_tasks(videos, setup.views, setup.decode_device),
        skipped,
        args.output or "",
    )
