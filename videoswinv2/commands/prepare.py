"""``videoswinv2 prepare SRC DST``: a training copy of a dataset folder (see ``videoswinv2.data.offline.prepare``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from videoswinv2.data.offline.prepare import PrepareSettings, prepare_dataset, summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``videoswinv2 prepare``; defaults from :class:`PrepareSettings`."""
    defaults = PrepareSettings()
    parser.add_argument("src", type=Path, help="dataset folder: videos in any layout, annotation files")
    parser.add_argument("dst", type=Path, help="output folder (same relative paths and file names)")
    parser.add_argument("--short-side", type=int, default=defaults.short_side, help="shorter side in pixels")
    parser.add_argument("--fps", type=float, default=defaults.fps, help="output frame rate (default: keep)")
    parser.add_argument("--gop", type=int, default=defaults.gop, help="frames between keyframes")
    parser.add_argument("--crf", type=int, default=defaults.crf, help="x264 quality (lower is better)")
    parser.add_argument("--preset", default=defaults.preset, help="x264 preset")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel processes")


def run(args: argparse.Namespace) -> int:
    """Run ``prepare`` from parsed arguments; prints the summary."""
    settings = PrepareSettings(
        short_side=args.short_side, fps=args.fps, gop=args.gop, crf=args.crf, preset=args.preset
    )
    results = prepare_dataset(args.src, args.dst, settings, workers=args.workers)  # UsageErrors: one line
    print(summary(results, args.dst))
    return 0
