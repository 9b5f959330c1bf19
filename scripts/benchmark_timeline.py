"""Windows/s of ``videoswinv2 timeline`` against one clip per window through the engine, peak
memory on a short and a long video, and per-clip latency of an ONNX export against PyTorch.

Timeline part (a generated 640x360 30 fps H.264 video of --minutes, keyframe every --gop frames;
windows of the model's clip at a stride of half a window):

- timeline:        ``videoswinv2 timeline``'s engine: each frame decoded once in order, a rolling
                   buffer, the centre crop of each window.
- seek-1crop:      the same engine (Trainer.predict, workers, batches of views, the same writer,
                   the windows split between the workers alike), but each window's frames read on
                   their own, as today's engine reads a clip: a seek to the keyframe before it and
                   decoding from there; the centre crop.
- seek-3crops:     the same, with the three crops every evaluation clip has in today's views.

Every run is a fresh process; the variants alternate (order reversed every other round),
--repeats rounds; the table gives median windows/s (from model ready to last row written) with
min-max and the speed-up over seek-3crops and seek-1crop, and the peak resident memory of the
main process and of the largest decoding worker. Then ``timeline`` alone on a --memory-minutes
video: its peak memory beside the short video's.

Latency part (``videoswinv2_tiny``, one clip of --latency-frames x --latency-crop): the model exported
to ONNX and run by onnxruntime on the CPU, against PyTorch eager fp32 and bf16 autocast, in
alternating rounds, median ms per clip with min-max, the ratio to eager fp32 and the largest
logit difference to it. On a busy machine PyTorch's OpenMP threads wait on each other: the tiny
model on 8x64x64 took 2.2 s with 2 threads and 0.35 s with 1 while other jobs ran, so time it on a
quiet machine (or pass --threads).

Models are random (seeded), post-norm weights ~1 so that every block counts.

    python scripts/benchmark_timeline.py                               # 2 and 10 min, tiny 32x2 224
    python scripts/benchmark_timeline.py --minutes 0.2 --memory-minutes 0.4 --repeats 1 \\
        --model smoke --latency-rounds 2 --latency-crop 64 --latency-frames 8   # a quick check

--docs FOLDER (docs/benchmarks) also writes each part's table and plot for the documentation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
import torch
from docs_output import DocsResults, bar_figure

# The two model sizes: videoswinv2_tiny at Video Swin's clip, and configs/smoke.yaml's model.
MODELS = {
    "tiny": ({}, 32, 2, 224),
    "smoke": ({"embed_dim": 32, "depths": [2, 2], "num_heads": [2, 4], "window_size": [8, 4, 4]}, 16, 2, 64),
}
VARIANTS = ("timeline", "seek-1crop", "seek-3crops")


def write_video(
    path: Path, minutes: float, gop: int, fps: int = 30, size: tuple[int, int] = (360, 640)
) -> None:
    """A smooth random texture panning across the frame, H.264 (crf 23, veryfast)."""
    rng = np.random.default_rng(0)
    height, width = size
    texture = rng.integers(0, 256, (height // 8 + 2, 2 * width // 8, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), np.uint8))  # blocks of 8 px: compressible
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = height, width
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        stream.codec_context.gop_size = gop
        for i in range(int(minutes * 60 * fps)):
            shift = (3 * i) % width
            image = np.ascontiguousarray(texture[:height, shift : shift + width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def write_checkpoint(path: Path, model: str) -> None:
    """A random model of ``model``'s preset with its views recorded (what ``timeline`` reads)."""
    from videoswinv2 import create_model
    from videoswinv2.checkpoints import save_state_dict
    from videoswinv2.record import EvalViews, ModelRecord

    kwargs, frames, interval, crop = MODELS[model]
    torch.manual_seed(0)
    backbone = create_model("videoswinv2_tiny", num_classes=400, **kwargs)
    for name, param in backbone.named_parameters():
        if ".norm1." in name or ".norm2." in name:
            param.data.normal_(1.0, 0.1)
        elif name == "head.fc.bias":
            param.data.normal_()
    views = EvalViews(
        num_clips=1, num_frames=frames, frame_interval=interval, short_side=crop, crop_size=crop
    )
    classes = tuple(f"class_{k:03d}" for k in range(400))
    metadata = ModelRecord("videoswinv2_tiny", 400, kwargs, classes, asdict(views))
    save_state_dict(backbone.state_dict(), path, metadata.to_strings())


@dataclass(frozen=True)
class SeekWindows:
    """The reference: part ``part`` of ``parts`` of a video's windows (split as the timeline
    splits them), each read on its own as ``EvalViews`` reads a clip (a seek to the keyframe
    before it, decoding from there), resized as a clip, with 1 or 3 crops."""

    video: str
    spec: object  # TimelineSpec
    part: int = 0
    parts: int = 1

    def failure_item(self):
        from videoswinv2.data.view_stream import Item

        return Item(self.video, self.spec.crops)

    def finished(self):
        from videoswinv2.data.view_stream import Finished

        return Finished(self.video, self.part, self.parts)

    def __iter__(self) -> Iterator:
        from videoswinv2.data.clip_planning import plan_windows, window_times
        from videoswinv2.data.decoding import open_video
        from videoswinv2.data.timeline import TimelineTask
        from videoswinv2.data.transforms import resize_short_side, three_crop_windows
        from videoswinv2.data.view_stream import Item, WindowSpan

        spec, size = self.spec, self.spec.crop_size
        shaping = TimelineTask(self.video, spec)  # the same normalisation and crops
        with open_video(self.video, spec.decoder) as reader:
            windows = plan_windows(reader.num_frames, reader.fps, spec.clip, spec.stride_s)
            first, last = len(windows) * self.part // self.parts, len(windows) * (self.part + 1) // self.parts
            for k in range(first, last):
                clip = resize_short_side(reader.read(windows[k]), spec.short_side).as_subclass(torch.Tensor)
                if spec.crops == 1:
                    top, left = three_crop_windows(*clip.shape[-2:], size)[1]
                    clip = clip[..., top : top + size, left : left + size]
                span = WindowSpan(k, *window_times(windows[k], reader.fps, reader.num_frames, spec.clip))
                yield Item(self.video, spec.crops, window=span), shaping.window_views(clip)


def child(args: argparse.Namespace) -> None:
    """One variant in this fresh process; writes its figures as JSON to ``args.result``."""
    from videoswinv2.data.timeline import TimelineSpec, timeline_tasks
    from videoswinv2.inference import keep_freed_memory, load_model, predict_videos
    from videoswinv2.inference.timeline import TimelineWriter

    keep_freed_memory()
    loaded = load_model(args.ckpt)
    views = loaded.views
    stride = (views.clip.offsets(30.0)[-1] + 1) / 30 / 2  # half a window of the 30 fps video
    spec = TimelineSpec.from_views(views, stride, crops=3 if args.child == "seek-3crops" else 1)
    tasks = timeline_tasks([args.video], spec, args.workers)  # one video: its windows split between workers
    if args.child != "timeline":
        tasks = [SeekWindows(args.video, spec, task.part, task.parts) for task in tasks]
    with tempfile.TemporaryDirectory() as out:
        writer = TimelineWriter(f"{out}/tl.csv", 5, loaded.classes, spec, progress=False)
        writer.prepare({"variant": args.child})
        started = time.perf_counter()
        predict_videos(
            loaded.module, tasks, writer, batch_size=None, num_workers=args.workers, precision=args.precision
        )
        seconds = time.perf_counter() - started
        windows = sum(1 for line in open(f"{out}/tl.csv")) - 1
    usage = {
        who: resource.getrusage(who).ru_maxrss * 1024
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    }
    Path(args.result).write_text(
        json.dumps(
            {
                "windows": windows,
                "seconds": seconds,
                "rss": usage[resource.RUSAGE_SELF],
                "worker_rss": usage[resource.RUSAGE_CHILDREN],
            }
        )
    )


def run_child(args: argparse.Namespace, variant: str, video: Path, ckpt: Path) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        command = [sys.executable, __file__, "--child", variant, "--video", str(video), "--ckpt", str(ckpt)]
        command += ["--workers", str(args.workers), "--precision", args.precision, "--result", result.name]
        subprocess.run(command, check=True)
        return json.loads(Path(result.name).read_text())


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def timeline_part(args: argparse.Namespace, folder: Path) -> None:
    ckpt = folder / "model.safetensors"
    write_checkpoint(ckpt, args.model)
    short, long = folder / "short.mp4", folder / "long.mp4"
    for path, minutes in ((short, args.minutes), (long, args.memory_minutes)):
        started = time.perf_counter()
        write_video(path, minutes, args.gop)
        print(f"generated {path.name}: {minutes:g} min, {time.perf_counter() - started:.0f} s", flush=True)
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for round_ in range(args.repeats):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            runs[variant].append(run_child(args, variant, short, ckpt))
            r = runs[variant][-1]
            print(
                f"  round {round_ + 1} {variant}: {r['windows']} windows in {r['seconds']:.1f} s", flush=True
            )
    long_run = run_child(args, "timeline", long, ckpt)
    timeline_report(args, runs, long_run)


def timeline_report(args: argparse.Namespace, runs: dict[str, list[dict]], long_run: dict) -> None:
    """Print the timeline part's table and memory line; with ``--docs``, also write them and a plot."""
    rates = {v: [r["windows"] / r["seconds"] for r in runs[v]] for v in VARIANTS}
    setting = (
        f"{args.minutes:g}-minute 640x360 video, {args.model} model, stride half a window, "
        f"{args.workers} workers, precision {args.precision}, gop {args.gop}, {args.repeats} rounds"
    )
    header = ["variant", "windows", "windows/s (min-max)", "vs seek-3crops", "vs seek-1crop",
              "peak RSS main / worker (MB)"]  # fmt: skip
    rows = []
    for variant in VARIANTS:
        median = statistics.median(rates[variant])
        rss = max(r["rss"] for r in runs[variant]) / 2**20
        worker = max(r["worker_rss"] for r in runs[variant]) / 2**20
        rows.append(
            [
                variant,
                str(runs[variant][0]["windows"]),
                spread(rates[variant]),
                f"{median / statistics.median(rates['seek-3crops']):.2f}x",
                f"{median / statistics.median(rates['seek-1crop']):.2f}x",
                f"{rss:.0f} / {worker:.0f}",
            ]
        )
    short_rss = max(r["rss"] for r in runs["timeline"])
    memory = (
        f"timeline peak RSS: {args.memory_minutes:g} min {long_run['rss'] / 2**20:.0f} MB "
        f"(worker {long_run['worker_rss'] / 2**20:.0f} MB) vs {args.minutes:g} min {short_rss / 2**20:.0f} MB: "
        f"{long_run['rss'] / short_rss:.3f}x ({long_run['windows']} windows, {long_run['windows'] / long_run['seconds']:.3g}/s)"
    )
    print(f"\n{setting}")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{memory}")
    if not args.docs:
        return
    docs = DocsResults("timeline")
    docs.text(setting + ":")
    docs.table(header, rows)
    docs.text(memory[0].upper() + memory[1:] + ".")
    docs.figure(
        bar_figure(
            list(VARIANTS),
            [statistics.median(rates[v]) for v in VARIANTS],
            low=[min(rates[v]) for v in VARIANTS],
            high=[max(rates[v]) for v in VARIANTS],
            ylabel="windows/s (median, min-max)",
            title=setting.split(", stride")[0],
        ),
        "windows per second of the timeline against one clip per window",
    )
    docs.write(args.docs)


def latency_part(args: argparse.Namespace, folder: Path) -> None:
    import onnxruntime

    from videoswinv2.inference import load_model
    from videoswinv2.inference.export import export_model

    ckpt = folder / "latency.safetensors"
    write_checkpoint(ckpt, "tiny")
    loaded = load_model(ckpt)
    loaded.views = loaded.views.overridden(
        num_frames=args.latency_frames, crop_size=args.latency_crop, short_side=args.latency_crop
    )
    started = time.perf_counter()
    result = export_model(loaded, "onnx", folder / "tiny.onnx")
    exported = (
        f"exported videoswinv2_tiny to ONNX in {time.perf_counter() - started:.0f} s "
        f"(its own check: {result.max_abs_diff:.1e})"
    )
    print(f"\n{exported}")
    model = loaded.module.backbone.eval()
    model.set_attn_impl("auto")
    model.cache_attention_bias(True)  # as predict runs it
    options = onnxruntime.SessionOptions()
    # onnxruntime's threads spin for a while after each run by default, taking the cores from
    # the PyTorch variant that runs next in this process.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if args.threads:  # the same number of threads for both runtimes
        torch.set_num_threads(args.threads)
        options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(result.path), options, providers=["CPUExecutionProvider"])
    clip = torch.randn(
        1,
        3,
        args.latency_frames,
        args.latency_crop,
        args.latency_crop,
        generator=torch.Generator().manual_seed(1),
    )

    def eager(dtype: torch.dtype) -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            return model(clip).float()

    variants = {
        "onnxruntime fp32": lambda: torch.from_numpy(session.run(None, {"clips": clip.numpy()})[0]),
        "PyTorch eager fp32": lambda: eager(torch.float32),
        "PyTorch eager bf16": lambda: eager(torch.bfloat16),
    }
    reference = variants["PyTorch eager fp32"]()
    diffs = {name: float((run() - reference).abs().max()) for name, run in variants.items()}  # also warms up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.latency_rounds):
        for name in list(variants) if round_ % 2 == 0 else list(variants)[::-1]:
            started = time.perf_counter()
            variants[name]()
            times[name].append((time.perf_counter() - started) * 1000)
    latency_report(args, times, diffs, exported)


def latency_report(
    args: argparse.Namespace, times: dict[str, list[float]], diffs: dict[str, float], exported: str
) -> None:
    """Print the latency table; with ``--docs``, also write it and a plot."""
    shape = f"1x3x{args.latency_frames}x{args.latency_crop}x{args.latency_crop}"
    setting = (
        f"per-clip latency, videoswinv2_tiny, clip {shape}, {args.latency_rounds} alternating rounds, "
        f"{torch.get_num_threads()} threads"
    )
    header = ["variant", "ms per clip (min-max)", "vs eager fp32", "max abs logit diff to eager fp32"]
    base = statistics.median(times["PyTorch eager fp32"])
    rows = [
        [name, spread(values), f"{base / statistics.median(values):.2f}x", f"{diffs[name]:.1e}"]
        for name, values in times.items()
    ]
    print(setting)
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if not args.docs:
        return
    docs = DocsResults("export-latency")
    docs.text(setting[0].upper() + setting[1:] + "; " + exported + ":")
    docs.table(header, rows)
    docs.figure(
        bar_figure(
            list(times),
            [statistics.median(v) for v in times.values()],
            low=[min(v) for v in times.values()],
            high=[max(v) for v in times.values()],
            ylabel="ms per clip (median, min-max)",
            title=f"videoswinv2_tiny, one {shape} clip",
        ),
        "per-clip latency of the ONNX export and of PyTorch",
    )
    docs.write(args.docs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the timed video")
    parser.add_argument("--memory-minutes", type=float, default=10.0, help="length of the memory video")
    parser.add_argument(
        "--gop", type=int, default=60, help="frames between keyframes of the generated videos"
    )
    parser.add_argument(
        "--model", choices=sorted(MODELS), default="tiny", help="tiny: 32x2 at 224; smoke: 16x2 at 64"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--precision", choices=("32", "bf16"), default="32")
    parser.add_argument("--latency-rounds", type=int, default=10)
    parser.add_argument("--latency-frames", type=int, default=32)
    parser.add_argument("--latency-crop", type=int, default=224)
    parser.add_argument(
        "--threads", type=int, help="threads of PyTorch and onnxruntime in the latency part (default: theirs)"
    )
    parser.add_argument("--skip", choices=("timeline", "latency"), action="append", default=[])
    parser.add_argument(
        "--docs", metavar="FOLDER", help="also write the tables and plots there (docs/benchmarks)"
    )
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--ckpt", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as folder:
        if "timeline" not in args.skip:
            timeline_part(args, Path(folder))
        if "latency" not in args.skip:
            latency_part(args, Path(folder))


if __name__ == "__main__":
    main()
