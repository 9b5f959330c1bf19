"""The timeline picture of the README and the docs (``docs/images/timeline_example.png``): a
model trained by ``configs/smoke.yaml`` run along a video whose motion changes class every few
seconds, with the true segments printed beside the found ones.

    lightning fit -c configs/smoke.yaml
    python scripts/timeline_example.py --ckpt runs/smoke/version_0/checkpoints/last.ckpt

The video is the synthetic dataset's motion (64x64, 25 fps), one class after another, each a
new random pattern; ``videoswinv2 timeline`` writes its rows, segments and picture, and the
picture is copied to --out.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np

from videoswinv2.cli import main as videoswinv2
from videoswinv2.data.offline.synthetic import SYNTHETIC_CLASSES, render_video, write_mp4
from videoswinv2.inference.inputs import mirrored_path

# (class, seconds) of the example video.
STORY = ((0, 6.0), (3, 5.0), (2, 4.0), (1, 6.0), (0, 3.0))
FPS = 25


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", required=True, help="a checkpoint of configs/smoke.yaml's model")
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "images" / "timeline_example.png")
    )
    parser.add_argument("--stride-seconds", default="0.5")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    frames = np.concatenate([render_video(label, round(seconds * FPS), 64, rng) for label, seconds in STORY])
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "motion story.mp4"
        write_mp4(video, frames, FPS)
        output = Path(folder) / "timeline.csv"
        common = ["--stride-seconds", args.stride_seconds, "--min-segment-seconds", "1", "--precision", "32"]
        code = videoswinv2(["timeline", str(video), "--ckpt", args.ckpt, "--output", str(output), *common])
        if code:
            raise SystemExit(code)
        print("true segments:")
        start = 0.0
        for label, seconds in STORY:
            print(f"  {start:6.2f} - {start + seconds:6.2f} s  {SYNTHETIC_CLASSES[label]}")
            start += seconds
        print("found segments:")
        for row in csv.DictReader(open(output.with_name("timeline.segments.csv"))):
            print(
                f"  {float(row['start_s']):6.2f} - {float(row['end_s']):6.2f} s  {row['label']} ({row['mean_prob']})"
            )
        shutil.copy(output.with_name("timeline_plots") / mirrored_path(str(video), ".png"), args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
