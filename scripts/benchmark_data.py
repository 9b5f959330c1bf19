"""CPU cost of a training clip: raw YouTube-like videos vs their `videoswinv2 prepare` copies,
``clips_per_video`` k = 1, 2, 4, each decoder, beside the bare decoder on the same frames.

It generates YouTube-like videos (a camera panning over a multi-scale texture, textured objects
moving across it, sensor grain; H.264 with x264's defaults: medium preset, crf 23, a keyframe every
250 frames, 3 B-frames; 30 fps), prepares them with the package defaults, and times in CPU time
(process_time, one thread, as in a DataLoader worker):

- pipeline: ``VideoClipDataset`` (train, 32 x 2 frames, random resized crop 224, flip,
  normalisation) producing k clips from one decode, per clip;
- bare:     the decoder library alone reading the same frames as uint8 (PyAV: seek to the
  keyframe before the first frame, decode to the last; decord ``get_batch``; torchcodec
  ``get_frames_at``), per clip.

Then, for the prepared k=4 and the raw k=1 PyAV pipelines, a DataLoader with 1 and 2 workers
(torch and the decoder at one thread per worker): clips/s per worker and each worker's CPU
time / wall time (about 1.0 when nothing runs extra threads).

``--dataset ssv2`` measures Something-Something V2 instead: WebM files as its archive holds them
(VP9, 12 fps, height 240, 4 s, one keyframe), clips by segment sampling (32 frames, one from each
32nd of the video, as configs/ssv2.yaml trains), and what `videoswinv2 prepare` saves per clip.

    python scripts/benchmark_data.py [--sizes 640x360 1280x720] [--samples 4] [--json out.json]
    python scripts/benchmark_data.py --dataset ssv2 [--videos 8 --samples 16 --rounds 3]
    python scripts/benchmark_data.py --samples 6 --rounds 3 --docs docs/benchmarks   # into the docs
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from docs_output import DocsResults
from matplotlib.figure import Figure
from torch.utils.data import DataLoader, Dataset

from videoswinv2.data import (
    ClipSpec,
    TrainTransform,
    VideoClipDataset,
    VideoRecord,
    collate_clips,
    open_video,
)
from videoswinv2.data.clip_planning import train_clips
from videoswinv2.data.decoding import DECODERS
from videoswinv2.data.offline.prepare import PrepareSettings, prepare_video

# The clips each dataset's recipe trains on, and its raw videos: (size, seconds, fps, codec).
SPECS = {
    "kinetics": ClipSpec(num_frames=32, frame_interval=2),
    "ssv2": ClipSpec(num_frames=32, sampling="segments"),
}
RAW = {
    "kinetics": (["640x360", "1280x720"], 10.0, 30, "libx264"),
    "ssv2": (["427x240"], 4.0, 12, "libvpx-vp9"),
}
CLIPS_PER_SECOND = 100  # what an H100 trains videoswinv2_base at, roughly


# -- videos ---------------------------------------------------------------------------------------


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Multi-scale colour noise (cells of 4 to 128 px, finer scales weaker): ``(H, W, 3)`` float."""
    out = torch.zeros(1, 3, height, width)
    for cell in (128, 64, 32, 16, 8, 4):
        coarse = torch.from_numpy(rng.normal(0, 1, (1, 3, height // cell + 2, width // cell + 2))).float()
        out += F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False) * cell**0.5
    out = out[0].permute(1, 2, 0).numpy()
    return 128 + 60 * out / out.std()


def youtube_like_video(
    path: Path, width: int, height: int, seconds: float, seed: int, fps: int = 30, codec: str = "libx264"
) -> Path:
    """Write a video with camera motion, moving textured objects and grain, encoded as YouTube
    uploads typically are before re-encoding (x264 defaults, GOP 250, B-frames), or as VP9 in WebM
    (``codec="libvpx-vp9"``, constant quality, keyframes at most every 250 frames) as SSv2's are."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * fps)
    pan = rng.uniform(1.0, 3.0, 2) * rng.choice([-1, 1], 2)  # pixels per frame, x and y
    margin = np.ceil(np.abs(pan) * frames).astype(int) + 8
    scene = _texture(height + margin[1], width + margin[0], rng)
    objects = [
        (
            _texture(size, size, rng),
            rng.uniform(0, [width - size, height - size]),
            rng.uniform(-6, 6, 2),
        )
        for size in rng.integers(min(width, height) // 6, min(width, height) // 2, 3)
    ]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = 250
        if codec == "libx264":
            stream.options = {"preset": "medium", "crf": "23", "bf": "3"}
        else:
            stream.options = {"crf": "32", "b": "0", "deadline": "good", "cpu-used": "4"}
        for t in range(frames):
            x0 = int(margin[0] / 2 + pan[0] * t * 0.5 + 4 * np.sin(t / 17))
            y0 = int(margin[1] / 2 + pan[1] * t * 0.5 + 3 * np.sin(t / 23))
            image = scene[y0 : y0 + height, x0 : x0 + width].copy()
            for texture, start, velocity in objects:
                size = texture.shape[0]
                x, y = (start + velocity * t) % [width - size, height - size]
                image[int(y) : int(y) + size, int(x) : int(x) + size] = texture
            image += rng.normal(0, 3, image.shape)  # sensor grain
            pixels = np.clip(image, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


# -- bare decoders --------------------------------------------------------------------------------


def _bare_pyav(path: str, wanted: list[int]) -> np.ndarray:
    """PyAV alone: seek to the keyframe before the first wanted frame, decode to the last."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        rate, base = stream.average_rate, stream.time_base
        container.seek(int(wanted[0] / rate / base), backward=True, stream=stream)
        frames, k = [], 0
        for frame in container.decode(stream):
            index = round(frame.pts * base * rate)
            while k < len(wanted) and wanted[k] == index:
                frames.append(frame.to_ndarray(format="rgb24", threads=1))
                k += 1
            if k == len(wanted):
                return np.stack(frames)
    raise RuntimeError(f"{path}: frames {wanted[k:]} not found")


def _bare_decord(path: str, wanted: list[int]) -> np.ndarray:
    import decord

    return decord.VideoReader(path, num_threads=1).get_batch(wanted).asnumpy()


def _bare_torchcodec(path: str, wanted: list[int]) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    return VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1).get_frames_at(wanted).data


BARE: dict[str, Callable[[str, list[int]], object]] = {"pyav": _bare_pyav, "decord": _bare_decord}


def _torchcodec_loads() -> str | None:
    """None if torchcodec decodes here, else why not."""
    if importlib.util.find_spec("torchcodec") is None:
        return "not installed"
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads FFmpeg's libraries)
    except (ImportError, OSError, RuntimeError) as error:
        return f"cannot load ({str(error).splitlines()[0][:80]})"
    return None


# -- timing ---------------------------------------------------------------------------------------


def _plans(
    paths: list[Path], spec: ClipSpec, samples: int, k: int, seed: int
) -> list[tuple[str, list[list[int]]]]:
    """``samples`` seeded draws of k training clips, round-robin over the videos."""
    generator = torch.Generator().manual_seed(seed)
    counts = {}
    for path in paths:
        with open_video(str(path)) as reader:
            counts[str(path)] = (reader.num_frames, reader.fps)
    out = []
    for s in range(samples):
        path = str(paths[s % len(paths)])
        total, fps = counts[path]
        out.append((path, train_clips(total, fps, spec, k, generator)))
    return out


def cpu_ms_per_clip(jobs: list[Callable[[], object]], clips: int, rounds: int) -> float:
    """Median over ``rounds`` of the process CPU time of all ``jobs``, per clip, in ms."""
    jobs[0]()  # warm up: imports, codec initialisation, allocator
    totals = []
    for _ in range(rounds):
        start = time.process_time()
        for job in jobs:
            job()
        totals.append(time.process_time() - start)
    return 1000 * statistics.median(totals) / clips


def measure(
    name: str, paths: list[Path], spec: ClipSpec, decoder: str, k: int, samples: int, rounds: int
) -> dict[str, float | str | int]:
    """Bare decoder and package pipeline, CPU ms per clip (pipeline NaN for a decoder the package
    does not offer: torchcodec is measured bare, to see whether it would earn its place)."""
    plans = _plans(paths, spec, samples, k, seed=k)
    clips = samples * k
    bare = BARE[decoder]
    result: dict[str, float | str | int] = {
        "videos": name,
        "decoder": decoder,
        "k": k,
        "bare_ms": cpu_ms_per_clip(
            [lambda p=p, c=c: bare(p, sorted({i for clip in c for i in clip})) for p, c in plans],
            clips,
            rounds,
        ),
        "pipeline_ms": float("nan"),
    }
    if decoder not in DECODERS:
        return result
    dataset = VideoClipDataset(
        [VideoRecord(str(p), 0) for p in paths],
        mode="train",
        transform=TrainTransform(224),
        clip=spec,
        decoder=decoder,  # type: ignore[arg-type]
        clips_per_video=k,
    )
    index = {str(p): i for i, p in enumerate(paths)}

    def pipeline(path: str, seed: int) -> None:
        torch.manual_seed(seed)  # the clip starts differ per sample, as in training
        dataset[index[path]]

    result["pipeline_ms"] = cpu_ms_per_clip(
        [lambda p=p, s=s: pipeline(p, s) for s, (p, _) in enumerate(plans)], clips, rounds
    )
    return result


class _WorkerClock(Dataset):
    """A dataset's samples plus the worker's id, CPU time and thread counts when it made them."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict:
        sample = self.dataset[index]
        info = torch.utils.data.get_worker_info()
        sample["clock"] = (
            info.id if info else 0,
            time.process_time(),
            time.perf_counter(),
            torch.get_num_threads(),
            len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0,
        )
        return sample


def _collate(samples: list[dict]) -> dict:
    batch = collate_clips([{key: s[key] for key in ("video", "label", "index", "broken")} for s in samples])
    batch["clock"] = [s["clock"] for s in samples]
    return batch


def worker_scaling(
    paths: list[Path], spec: ClipSpec, decoder: str, k: int, workers: int, samples: int
) -> dict:
    """Wall-clock clips/s of a DataLoader with ``workers`` processes (after one batch per worker)."""
    records = [VideoRecord(str(paths[s % len(paths)]), 0) for s in range(samples + workers)]
    dataset = VideoClipDataset(
        records, mode="train", transform=TrainTransform(224), clip=spec, decoder=decoder, clips_per_video=k
    )  # type: ignore[arg-type]
    loader = DataLoader(_WorkerClock(dataset), batch_size=1, num_workers=workers, collate_fn=_collate)
    clocks: dict[int, list[tuple]] = {}
    clips, start = 0, None
    for n, batch in enumerate(loader):
        if n == workers - 1:  # every worker has started and made one sample
            start = time.perf_counter()
            continue
        if start is not None:
            clips += batch["video"].shape[0]
        for clock in batch["clock"]:
            clocks.setdefault(clock[0], []).append(clock[1:])
    wall = time.perf_counter() - start
    ratios = [(c[-1][0] - c[0][0]) / (c[-1][1] - c[0][1]) for c in clocks.values() if len(c) > 1]
    return {
        "workers": workers,
        "clips_per_s": clips / wall,
        "per_worker": clips / wall / workers,
        "cpu_over_wall": max(ratios) if ratios else float("nan"),
        "torch_threads": max(c[-1][2] for c in clocks.values()),
        "os_threads": max(c[-1][3] for c in clocks.values()),
    }


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset", choices=sorted(SPECS), default="kinetics", help="videos and clips to time"
    )
    parser.add_argument(
        "--sizes", nargs="+", help="WxH of the raw videos (kinetics: 640x360 1280x720, ssv2: 427x240)"
    )
    parser.add_argument("--videos", type=int, default=2, help="generated videos per size")
    parser.add_argument(
        "--seconds", type=float, help="length of each generated video (kinetics: 10, ssv2: 4)"
    )
    parser.add_argument("--samples", type=int, default=4, help="decodes (of k clips each) per measurement")
    parser.add_argument("--rounds", type=int, default=1, help="timing rounds; the median is reported")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4], help="clips_per_video values")
    parser.add_argument("--decoders", nargs="+", default=["pyav", "decord", "torchcodec"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="DataLoader workers to try")
    parser.add_argument(
        "--prepare",
        nargs="+",
        default=[""],
        metavar="KEY=VALUE,...",
        help="prepare settings to compare, e.g. 'gop=16' 'short_side=320,crf=26' ('' = the defaults)",
    )
    parser.add_argument("--work-dir", type=Path, help="keep the generated videos here (reused if present)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--docs", type=Path, metavar="FOLDER", help="also write the tables and a plot there (docs/benchmarks)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes, seconds, fps, codec = RAW[args.dataset]
    sizes, seconds, spec = args.sizes or sizes, args.seconds or seconds, SPECS[args.dataset]
    suffix = ".webm" if codec == "libvpx-vp9" else ".mp4"

    decoders = list(args.decoders)
    if "torchcodec" in decoders:
        why = _torchcodec_loads()
        if why:
            print(f"torchcodec left out: {why}")
            decoders.remove("torchcodec")
        else:
            BARE["torchcodec"] = _bare_torchcodec
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        results: list[dict] = []
        sets: dict[str, list[Path]] = {}
        for size in sizes:
            width, height = map(int, size.split("x"))
            raw = work / f"raw_{size}"
            raw.mkdir(parents=True, exist_ok=True)
            paths = []
            for v in range(args.videos):
                path = raw / f"video{v}{suffix}"
                if not path.exists():
                    youtube_like_video(path, width, height, seconds, seed=v, fps=fps, codec=codec)
                paths.append(path)
            sets[f"raw {size}"] = paths
            for variant in args.prepare:
                settings = PrepareSettings()
                for item in filter(None, variant.split(",")):
                    key, value = item.split("=")
                    settings = replace(settings, **{key: type(getattr(PrepareSettings(), key) or 0.0)(value)})
                label = f"prepared {size}" + (f" {variant}" if variant else "")
                start = time.process_time()
                prepared = [
                    prepare_video(p, work / label.replace(" ", "_") / p.name, settings) for p in paths
                ]
                seconds = time.process_time() - start
                sets[label] = [Path(work / label.replace(" ", "_") / p.name) for p in paths]
                size_in = sum(r.source_bytes for r in prepared)
                size_out = sum(r.output_bytes for r in prepared)
                print(
                    f"{label}: {settings}; {size_in / 1e6:.1f} MB -> {size_out / 1e6:.1f} MB "
                    f"({size_out / size_in:.0%}); prepare CPU time {seconds / len(paths):.1f} s per video "
                    "(0 if already there)"
                )
        for name, paths in sets.items():
            for decoder in decoders:
                for k in args.ks:
                    results.append(measure(name, paths, spec, decoder, k, args.samples, args.rounds))
                    r = results[-1]
                    print(
                        f"  {name} {decoder} k={k}: bare {r['bare_ms']:.0f} ms, pipeline {r['pipeline_ms']:.0f} ms"
                    )
        scaling = []
        for name, paths in sets.items():
            k = 1 if name.startswith("raw") else max(args.ks)
            for workers in args.workers:
                scaling.append(
                    {"videos": name, "k": k, **worker_scaling(paths, spec, "pyav", k, workers, 4 * workers)}
                )

    today = {
        r["videos"].split()[-1]: r["pipeline_ms"]
        for r in results
        if r["videos"].startswith("raw") and r["decoder"] == "pyav" and r["k"] == 1
    }
    header = (
        f"{'videos':28} {'decoder':10} {'k':>2} | {'bare ms':>8} {'pipeline ms':>11} {'pipe/bare':>9} | "
        f"{'clips/s/core':>12} {'vs raw k=1':>10} | {'cores @100/s':>12}"
    )
    clips = "32 frames by segments" if spec.sampling == "segments" else "32 x 2 frames"
    print(f"\nCPU time per training clip ({clips}, crop 224, flip), one thread; lower is better")
    print(header)
    print("-" * len(header))
    for r in results:
        pipeline, bare = r["pipeline_ms"], r["bare_ms"]
        if pipeline != pipeline:  # NaN: a decoder measured bare only
            print(
                f"{r['videos']:28} {r['decoder']:10} {r['k']:>2} | {bare:8.0f} {'-':>11} {'-':>9} | (bare only)"
            )
            continue
        reference = today.get(r["videos"].split()[1])
        ratio = f"{reference / pipeline:9.2f}x" if reference else f"{'':>10}"
        print(
            f"{r['videos']:28} {r['decoder']:10} {r['k']:>2} | {bare:8.0f} {pipeline:11.0f} "
            f"{pipeline / bare:9.2f} | {1000 / pipeline:12.2f} {ratio} | "
            f"{CLIPS_PER_SECOND * pipeline / 1000:12.1f}"
        )
    print(
        "vs raw k=1 = today's pipeline (raw video, PyAV, one clip per decode) / this, same size; "
        f"cores @100/s = CPU cores to feed {CLIPS_PER_SECOND} clips/s."
    )
    print(
        "\nDataLoader workers (PyAV, wall clock; the machine must be otherwise idle for these to mean much)"
    )
    print(
        f"{'videos':28} {'k':>2} {'workers':>7} | {'clips/s':>8} {'per worker':>10} | cpu/wall  threads(torch, OS)"
    )
    for s in scaling:
        print(
            f"{s['videos']:28} {s['k']:>2} {s['workers']:>7} | {s['clips_per_s']:8.2f} {s['per_worker']:10.2f} | "
            f"{s['cpu_over_wall']:8.2f}  {s['torch_threads']}, {s['os_threads']}"
        )
    if args.json:
        args.json.write_text(json.dumps({"clips": results, "workers": scaling}, indent=2))
    if args.docs:
        docs_results(args, results, scaling).write(args.docs)


def docs_results(args: argparse.Namespace, results: list[dict], scaling: list[dict]) -> DocsResults:
    """The documentation's tables (ms of CPU per training clip, package pipeline with the bare
    decoder in brackets; DataLoader workers) and a plot of the pipeline's cost."""
    docs = DocsResults("data" if args.dataset == "kinetics" else f"data-{args.dataset}")
    ks = sorted({r["k"] for r in results})
    sets = list(dict.fromkeys(r["videos"] for r in results))
    decoders = list(dict.fromkeys(r["decoder"] for r in results))
    cell = {(r["videos"], r["decoder"], r["k"]): r for r in results}
    clips = "32 frames by segments" if SPECS[args.dataset].sampling == "segments" else "32 x 2 frames"
    docs.text(
        f"ms of CPU per training clip ({clips}, random resized crop 224, flip, normalised; one thread), "
        f"package pipeline with the bare decoder reading the same frames in brackets; "
        f"k = `clips_per_video`; {args.videos} videos per size, median of {args.rounds} rounds; "
        f"cores = CPU cores to feed {CLIPS_PER_SECOND} clips/s:"
    )
    header = [
        "videos",
        "decoder",
        *(f"k={k}" for k in ks),
        f"cores at {CLIPS_PER_SECOND} clips/s (k={ks[0]} -> k={ks[-1]})",
    ]
    rows = []
    for name in sets:
        for decoder in decoders:
            cells, cores = [], []
            for k in ks:
                r = cell.get((name, decoder, k))
                if r is None:
                    cells.append("")
                    continue
                pipeline, bare = r["pipeline_ms"], r["bare_ms"]
                if pipeline != pipeline:  # NaN: measured bare only
                    cells.append(f"- ({bare:.0f})")
                    continue
                cells.append(f"{pipeline:.0f} ({bare:.0f})")
                cores.append(CLIPS_PER_SECOND * pipeline / 1000)
            rows.append(
                [name, decoder, *cells, f"{cores[0]:.1f} -> {cores[-1]:.1f}" if cores else "bare only"]
            )
    docs.table(header, rows)
    if scaling:
        docs.text("DataLoader workers (PyAV, wall clock; one torch thread and one decoder thread each):")
        docs.table(
            ["videos", "k", "workers", "clips/s", "per worker", "CPU time / wall time per worker"],
            [
                [
                    s["videos"],
                    s["k"],
                    s["workers"],
                    f"{s['clips_per_s']:.1f}",
                    f"{s['per_worker']:.1f}",
                    f"{s['cpu_over_wall']:.2f}",
                ]
                for s in scaling
            ],
        )
    plotted = [
        d
        for d in decoders
        if any(cell[key]["pipeline_ms"] == cell[key]["pipeline_ms"] for key in cell if key[1] == d)
    ]
    figure = Figure(figsize=(4.2 * max(1, len(plotted)), 3.6))
    axes_list = figure.subplots(1, max(1, len(plotted)), sharey=True, squeeze=False)[0]
    width = 0.8 / len(ks)
    for axes, decoder in zip(axes_list, plotted):
        for j, k in enumerate(ks):
            positions = [g + (j - (len(ks) - 1) / 2) * width for g in range(len(sets))]
            values = [
                cell[(n, decoder, k)]["pipeline_ms"] if (n, decoder, k) in cell else float("nan")
                for n in sets
            ]
            axes.bar(positions, values, width, label=f"k={k}")
        axes.set_xticks(list(range(len(sets))), [n.replace(" ", "\n", 1) for n in sets], fontsize=8)
        axes.set_title(f"{decoder}: package pipeline", fontsize=10)
        axes.grid(axis="y", alpha=0.3)
    axes_list[0].set_ylabel("ms of CPU per training clip")
    axes_list[0].legend(fontsize=8)
    docs.figure(figure, "ms of CPU per training clip, raw and prepared videos, k clips per decode")
    return docs


if __name__ == "__main__":
    main()
