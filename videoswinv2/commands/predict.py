"""``videoswinv2 predict INPUT ... --ckpt CKPT [--output FILE]``: top-k classes of many videos
(softmax averaged over each video's views; a multi-label model's sigmoids, with every class over
``--threshold`` too), as rows of a ``.csv`` or ``.jsonl`` file or on the terminal; a re-run skips
the videos done and retries those that failed."""

from __future__ import annotations

import argparse

from videoswinv2.commands._inference import (
    add_inference_arguments,
    add_threshold_argument,
    positive_int,
    prepare,
    run_tasks,
    warn_untrained,
)
from videoswinv2.inference.outputs import check_row_file
from videoswinv2.inference.writers import PredictionWriter

PROG = "videoswinv2 predict"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_inference_arguments(parser)
    parser.add_argument(
        "--classes", help="class names file, one per line (default: the checkpoint's, or Kinetics-400)"
    )
    parser.add_argument("--topk", type=positive_int, default=5, help="classes per video (default 5)")
    add_threshold_argument(parser, "rows name those classes besides the top-k")
    parser.add_argument("--output", help="write the rows to this .csv or .jsonl file instead of the terminal")


def run(args: argparse.Namespace) -> int:
    check_row_file(args.output)  # before the model is read
    setup = prepare(args, need_head=True)
    writer = PredictionWriter(
        args.output, args.topk, setup.loaded.classes, setup.threshold, progress=not args.no_progress
    )
    writer.for_model(setup.loaded.record.multi_label)
    done = writer.prepare(setup.settings(topk=args.topk, classes=writer.classes), overwrite=args.overwrite)
    warn_untrained(PROG, setup)
    return run_tasks(PROG, args, setup, writer, done, args.output or "")
