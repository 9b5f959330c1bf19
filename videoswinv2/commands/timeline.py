"""``videoswinv2 timeline VIDEO ... --ckpt CKPT --stride-seconds S [--output F.csv|.jsonl]``:
what happens when, along whole videos: windows of the model's clip every S seconds (see
``videoswinv2.data.timeline``), written by ``videoswinv2.inference.timeline``; a multi-label
model's segments are per class, where it is over ``--threshold``."""

from __future__ import annotations

import argparse
from functools import partial

from videoswinv2.commands._inference import (
    add_inference_arguments,
    add_threshold_argument,
    non_negative_float,
    positive_float,
    positive_int,
    prepare,
    run_tasks,
    warn_untrained,
)
from videoswinv2.data.timeline import TimelineSpec, timeline_tasks
from videoswinv2.inference.outputs import check_row_file
from videoswinv2.inference.timeline import TimelineWriter

PROG = "videoswinv2 timeline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_inference_arguments(parser, clips=False)
    parser.add_argument(
        "--stride-seconds",
        type=positive_float,
        required=True,
        help="seconds from one window's start to the next",
    )
    parser.add_argument(
        "--three-crops",
        action="store_true",
        help="average three crops along the long side (default: the centre one)",
    )
    parser.add_argument(
        "--min-segment-seconds",
        type=non_negative_float,
        default=0.0,
        help="segments shorter than this join their longer neighbour (default 0: none); "
        "multi-label, per class: shorter gaps close and shorter segments go",
    )
    parser.add_argument(
        "--classes", help="class names file, one per line (default: the checkpoint's, or Kinetics-400)"
    )
    parser.add_argument("--topk", type=positive_int, default=5, help="classes per window row (default 5)")
    add_threshold_argument(parser, "each class has its own segments, which may overlap")
    parser.add_argument(
        "--output",
        help="the windows' .csv or .jsonl file; segments and pictures go beside it "
        "(default: print each video's segments)",
    )


def run(args: argparse.Namespace) -> int:
    check_row_file(args.output)  # before the model is read
    setup = prepare(args, need_head=True)
    spec = TimelineSpec.from_views(
        setup.views, args.stride_seconds, crops=3 if args.three_crops else 1, device=setup.decode_device
    )
    writer = TimelineWriter(
        args.output,
        args.topk,
        setup.loaded.classes,
        spec,
        args.min_segment_seconds,
        setup.threshold,
        progress=not args.no_progress,
    )
    settings = setup.settings(
        topk=args.topk,
        classes=setup.loaded.classes,
        stride_s=spec.stride_s,
        crops=spec.crops,
        min_segment_s=args.min_segment_seconds,
    )
    done, skip = writer.prepare(settings, overwrite=args.overwrite)
    warn_untrained(PROG, setup)
    make_tasks = partial(timeline_tasks, spec=spec, workers=args.num_workers, skip=skip)
    return run_tasks(PROG, args, setup, writer, done, args.output or "", make_tasks)
