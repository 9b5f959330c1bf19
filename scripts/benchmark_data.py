"""CPU cost of a training clip, and of a video's test views, for each decoder (PyAV, decord,
torchcodec): raw YouTube-like videos vs their `videoswinv2 prepare` copies, ``clips_per_video``
k = 1 and 4, frames cropped from the decoded size vs resized to short side 256 while decoding.

It generates YouTube-like videos (a camera panning over a multi-scale texture, textured objects
moving across it, sensor grain; H.264 with x264's defaults: medium preset, crf 23, a keyframe every
250 frames, 3 B-frames; 30 fps), prepares them with the package defaults, and times in CPU time
(process_time, one thread, as in a DataLoader worker), every configuration once per round, all in
turn, so that the decoders alternate under the same load (median and range over the rounds):

- bare:      the decoder library alone reading the clips' frames as uint8 (PyAV: seek to the
  keyframe before the first frame, decode to the last; decord ``get_batch``; torchcodec
  ``get_frames_at``), per clip;
- bare 256:  the same, each library resizing to short side 256 in its colour conversion (PyAV's
  ``to_ndarray(width, height)``, decord's ``VideoReader(width, height)``, torchcodec's
  ``transforms=[Resize]``);
- train:     ``VideoClipDataset`` (train, 32 x 2 frames, random resized crop 224, flip,
  normalisation) producing k clips from one decode, per clip;
- train 256: the same from frames resized to short side 256 while decoding (torchcodec resizes in
  its colour conversion, PyAV and decord after it), Video Swin's order;
- views:     ``load_views``, a video's 4 clips x 3 crops (short side 256, crop 224), per video.

Then a DataLoader with 1 and 2 workers (the first decoder; torch and the decoder at one thread per
worker): clips/s per worker and each worker's CPU time / wall time (about 1.0 when nothing runs
extra threads).

``--device cuda`` (a machine with an NVIDIA GPU) times wall-clock instead and adds torchcodec
decoding on the GPU (NVDEC): the bare frames and the test views.

``--dataset ssv2`` measures Something-Something V2 instead: WebM files as its archive holds them
(VP9, 12 fps, height 240, 4 s, one keyframe), clips by segment sampling (32 frames, one from each
32nd of the video, as configs/ssv2.yaml trains), and what `videoswinv2 prepare` saves per clip.

    python scripts/benchmark_data.py [--sizes 640x360 1280x720] [--samples 4] [--rounds 5] [--json out.json]
    python scripts/benchmark_data.py --dataset ssv2 [--videos 8 --samples 16 --rounds 3]
    python scripts/benchmark_data.py --device cuda --workers      # on a GPU machine
    python scripts/benchmark_data.py --samples 6 --rounds 5 --docs docs/benchmarks   # into the docs
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
from typing import NamedTuple

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
    decoding,
    load_views,
    open_video,
)
from videoswinv2.data.clip_planning import train_clips
from videoswinv2.data.decoding import DECODERS
from videoswinv2.data.offline.prepare import PrepareSettings, prepare_video
from videoswinv2.data.transforms import resized_size
from videoswinv2.record import EvalViews

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


def _bare_pyav(path: str, wanted: list[int], size: tuple[int, int] | None = None) -> np.ndarray:
    """PyAV alone: seek to the keyframe before the first wanted frame, decode to the last;
    ``size`` (H, W): swscale resizes in the colour conversion."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        rate, base = stream.average_rate, stream.time_base
        container.seek(int(wanted[0] / rate / base), backward=True, stream=stream)
        frames, k = [], 0
        resize = {"height": size[0], "width": size[1], "interpolation": "BILINEAR"} if size else {}
        for frame in container.decode(stream):
            index = round(frame.pts * base * rate)
            while k < len(wanted) and wanted[k] == index:
                frames.append(frame.to_ndarray(format="rgb24", threads=1, **resize))
                k += 1
            if k == len(wanted):
                return np.stack(frames)
    raise RuntimeError(f"{path}: frames {wanted[k:]} not found")


def _bare_decord(path: str, wanted: list[int], size: tuple[int, int] | None = None) -> np.ndarray:
    import decord

    height, width = size or (-1, -1)
    return decord.VideoReader(path, num_threads=1, width=width, height=height).get_batch(wanted).asnumpy()


def _bare_torchcodec(path: str, wanted: list[int], size: tuple[int, int] | None = None) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import Resize

    transforms = [Resize(size)] if size else None
    return (
        VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, transforms=transforms)
        .get_frames_at(wanted)
        .data
    )


BARE: dict[str, Callable[..., object]] = {
    "pyav": _bare_pyav,
    "decord": _bare_decord,
    "torchcodec": _bare_torchcodec,
}


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


class Config(NamedTuple):
    """One thing timed: ``what`` ("bare", "train", "train 256", "views"; GPU mode "... cuda")
    over ``videos`` with ``decoder``, ``k`` clips per decode; ``jobs`` run once per round and
    make ``clips`` clips (views: videos)."""

    videos: str
    what: str
    decoder: str
    k: int
    jobs: list[Callable[[], object]]
    clips: int


def train_configs(
    name: str, paths: list[Path], spec: ClipSpec, decoder: str, k: int, samples: int, short_side: int
) -> list[Config]:
    """The bare decoder reading the frames of ``samples`` draws of k training clips, and the
    package's training pipeline making them: cropped from the decoded frames, and from frames
    resized to ``short_side`` while decoding (Video Swin's order)."""
    plans = _plans(paths, spec, samples, k, seed=k)
    bare = BARE[decoder.removesuffix(RESIZING)]
    with open_video(str(paths[0])) as reader:
        size = resized_size(*reader.read([0]).shape[1:3], short_side)
    configs = [
        Config(
            name,
            what,
            decoder,
            k,
            [lambda p=p, c=c, z=z: bare(p, sorted({i for clip in c for i in clip}), z) for p, c in plans],
            samples * k,
        )
        for what, z in (("bare", None), (f"bare {short_side}", size))
    ]
    index = {str(p): i for i, p in enumerate(paths)}
    for what, side in (("train", None), (f"train {short_side}", short_side)):
        dataset = VideoClipDataset(
            [VideoRecord(str(p), 0) for p in paths],
            mode="train",
            transform=TrainTransform(224),
            clip=spec,
            decoder=decoder.removesuffix(RESIZING),  # type: ignore[arg-type]
            clips_per_video=k,
            short_side=side,
        )

        def sample(path: str, seed: int, dataset: VideoClipDataset = dataset) -> None:
            torch.manual_seed(seed)  # the clip starts differ per sample, as in training
            dataset[index[path]]

        jobs = [lambda p=p, s=s: sample(p, s) for s, (p, _) in enumerate(plans)]
        configs.append(Config(name, what, decoder, k, jobs, samples * k))
    return [_resizing(c) for c in configs] if decoder.endswith(RESIZING) else configs


# "torchcodec+resize": torchcodec resizing in its colour conversion on the CPU too.
RESIZING = "+resize"


def _resizing(config: Config) -> Config:
    """``config`` with ``RESIZE_WHILE_DECODING_ON_CPU`` on while its jobs run."""

    def run(job: Callable[[], object]) -> None:
        decoding.RESIZE_WHILE_DECODING_ON_CPU = True
        try:
            job()
        finally:
            decoding.RESIZE_WHILE_DECODING_ON_CPU = False

    return config._replace(jobs=[lambda job=job: run(job) for job in config.jobs])


def view_config(name: str, paths: list[Path], decoder: str, device: str = "cpu") -> Config:
    """Every video's test views (4 clips x 3 crops, short side 256, crop 224), per video."""
    views = EvalViews(num_clips=4, short_side=256, crop_size=224, decoder=decoder.removesuffix(RESIZING))
    jobs = [lambda p=p: load_views(views, str(p), device) for p in paths]
    what = "views" if device == "cpu" else f"views {device}"
    config = Config(name, what, decoder, 4, jobs, len(paths))
    return _resizing(config) if decoder.endswith(RESIZING) else config


def _cuda_bare(path: str, wanted: list[int]) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    return VideoDecoder(path, seek_mode="exact", device="cuda").get_frames_at(wanted).data


def alternate(configs: list[Config], rounds: int, wall: bool) -> list[dict]:
    """Each config timed once per round, all configs in turn (the order reversed every other
    round), so that decoders alternate under the same load: ms per clip (CPU time of this process,
    or wall time with ``wall``, CUDA synchronised), median and range over the rounds."""

    def clock() -> float:
        if wall:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()

    for config in configs:
        config.jobs[0]()  # warm up: imports, codec initialisation, allocator
    times: dict[int, list[float]] = {n: [] for n in range(len(configs))}
    for r in range(rounds):
        order = list(enumerate(configs))
        for n, config in order if r % 2 == 0 else order[::-1]:
            start = clock()
            for job in config.jobs:
                job()
            times[n].append(1000 * (clock() - start) / config.clips)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    return [
        {
            "videos": c.videos,
            "what": c.what,
            "decoder": c.decoder,
            "k": c.k,
            "ms": statistics.median(times[n]),
            "low": min(times[n]),
            "high": max(times[n]),
        }
        for n, c in enumerate(configs)
    ]


def crop_difference(paths: list[Path], short_side: int, crops: int = 50, size: int = 224) -> dict:
    """How far Video Swin's order (short side to ``short_side``, then the random resized crop)
    lands from cropping the decoded frames: the same relative regions (area 0.08-1, aspect 3/4-4/3)
    cut both ways from a video's frames and resized to ``size``; mean absolute difference in levels
    of 255, PSNR, and the ratio of mean gradient magnitudes (resized first / cropped directly: below
    1 is blurrier)."""
    generator = torch.Generator().manual_seed(0)
    diffs, psnrs, sharpness = [], [], []
    for n in range(crops):
        path = str(paths[n % len(paths)])
        with open_video(path) as full, open_video(path, short_side=short_side) as small:
            index = int(torch.randint(full.num_frames, (1,), generator=generator))
            a, b = (r.read([index])[0].permute(2, 0, 1).float() for r in (full, small))
        area = float(torch.empty(1).uniform_(0.08, 1.0, generator=generator))
        aspect = float(torch.empty(1).uniform_(np.log(3 / 4), np.log(4 / 3), generator=generator).exp())
        rel_w, rel_h = (area * aspect) ** 0.5, (area / aspect) ** 0.5  # of the frame's sqrt(H * W)
        x0, y0 = (float(torch.rand(1, generator=generator)) for _ in range(2))
        outs = []
        for frame in (a, b):
            height, width = frame.shape[-2:]
            side = (height * width) ** 0.5
            h, w = min(height, round(rel_h * side)), min(width, round(rel_w * side))
            top, left = round(y0 * (height - h)), round(x0 * (width - w))
            region = frame[None, :, top : top + h, left : left + w]
            outs.append(F.interpolate(region, size=(size, size), mode="bilinear", antialias=True)[0])
        error = (outs[0] - outs[1]).abs()
        diffs.append(float(error.mean()))
        psnrs.append(float(10 * torch.log10(255**2 / (error**2).mean().clamp_min(1e-6))))
        gradient = [
            float((o[:, 1:] - o[:, :-1]).abs().mean() + (o[..., 1:] - o[..., :-1]).abs().mean()) for o in outs
        ]
        sharpness.append(gradient[1] / gradient[0])
    return {
        "mean_abs": statistics.mean(diffs),
        "psnr_db": statistics.median(psnrs),
        "sharpness": statistics.mean(sharpness),
    }


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
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (median, range)")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4], help="clips_per_video values")
    parser.add_argument(
        "--decoders",
        nargs="+",
        default=list(DECODERS),
        choices=[*DECODERS, "torchcodec" + RESIZING],
        help=f"torchcodec{RESIZING}: torchcodec resizing in its colour conversion on the CPU too",
    )
    parser.add_argument(
        "--train-short-side", type=int, default=256, help="'train N': resize to N while decoding, then crop"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("bare", "train", "views"),
        default=["bare", "train", "views"],
        help="what to time",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: time in wall-clock time, adding torchcodec decoding on the GPU (bare and views)",
    )
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="DataLoader workers to try")
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
    if any(d.startswith("torchcodec") for d in decoders):
        why = _torchcodec_loads()
        if why:
            print(f"torchcodec left out: {why}")
            decoders = [d for d in decoders if not d.startswith("torchcodec")]
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
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
                spent = time.process_time() - start
                sets[label] = [Path(work / label.replace(" ", "_") / p.name) for p in paths]
                size_in = sum(r.source_bytes for r in prepared)
                size_out = sum(r.output_bytes for r in prepared)
                print(
                    f"{label}: {settings}; {size_in / 1e6:.1f} MB -> {size_out / 1e6:.1f} MB "
                    f"({size_out / size_in:.0%}); prepare CPU time {spent / len(paths):.1f} s per video "
                    "(0 if already there)"
                )
        configs = []
        for name, paths in sets.items():
            for k in args.ks:
                for decoder in decoders:
                    configs += train_configs(
                        name, paths, spec, decoder, k, args.samples, args.train_short_side
                    )
                if args.device == "cuda":  # torchcodec on the GPU, the same frames as "bare"
                    plans = _plans(paths, spec, args.samples, k, seed=k)
                    jobs = [
                        lambda p=p, c=c: _cuda_bare(p, sorted({i for x in c for i in x})) for p, c in plans
                    ]
                    configs.append(Config(name, "bare cuda", "torchcodec", k, jobs, args.samples * k))
            if spec.sampling == "interval":
                configs += [view_config(name, paths, decoder) for decoder in decoders]
                if args.device == "cuda":
                    configs.append(view_config(name, paths, "torchcodec", "cuda"))
        configs = [c for c in configs if c.what.split()[0] in args.only]
        print(f"timing {len(configs)} configurations, {args.rounds} alternating rounds")
        results = alternate(configs, args.rounds, wall=args.device == "cuda")
        crops = {name: crop_difference(paths, args.train_short_side) for name, paths in sets.items()}
        scaling = []
        for name, paths in sets.items():
            k = 1 if name.startswith("raw") else max(args.ks)
            for workers in args.workers:
                scaling.append(
                    {
                        "videos": name,
                        "k": k,
                        **worker_scaling(paths, spec, decoders[0], k, workers, 4 * workers),
                    }
                )

    clock = "wall-clock" if args.device == "cuda" else "CPU"
    print(
        f"\nms of {clock} time per clip (views: per video), median (range) of {args.rounds} alternating rounds"
    )
    for line in table_rows(results, decoders):
        print(" | ".join(map(str, line)))
    print(
        f"\nshort side {args.train_short_side} before the random resized crop vs cropping the decoded "
        "frames (50 crops, the same relative regions, resized to 224; PyAV):"
    )
    for name, c in crops.items():
        print(
            f"  {name}: mean |difference| {c['mean_abs']:.2f} levels, PSNR {c['psnr_db']:.1f} dB, "
            f"sharpness {c['sharpness']:.2f}x"
        )
    print(
        f"\nDataLoader workers ({decoders[0]}, wall clock; the machine must be otherwise idle for these to mean much)"
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
        args.json.write_text(json.dumps({"clips": results, "crops": crops, "workers": scaling}, indent=2))
    if args.docs:
        docs_results(args, results, scaling, crops).write(args.docs)


def table_rows(results: list[dict], decoders: list[str]) -> list[list[str]]:
    """Header and one row per (videos, what, k): each decoder's median (range), the cheapest
    against PyAV, and the CPU cores per GPU at ``CLIPS_PER_SECOND`` clips/s of the cheapest."""
    cell = {(r["videos"], r["what"], r["k"], r["decoder"]): r for r in results}
    keys = list(dict.fromkeys((r["videos"], r["what"], r["k"]) for r in results))
    rows = [["videos", "what", "k", *decoders, "PyAV / cheapest", f"cores at {CLIPS_PER_SECOND} clips/s"]]
    for videos, what, k in keys:
        found = {d: cell[videos, what, k, d] for d in decoders if (videos, what, k, d) in cell}
        cells = [
            f"{r['ms']:.0f} ({r['low']:.0f}-{r['high']:.0f})" if (r := found.get(d)) else "" for d in decoders
        ]
        best = min(r["ms"] for r in found.values())
        ratio = f"{found['pyav']['ms'] / best:.2f}x" if "pyav" in found else ""
        cores = "" if what.startswith("views") else f"{CLIPS_PER_SECOND * best / 1000:.1f}"
        rows.append([videos, what, str(k), *cells, ratio, cores])
    return rows


def docs_results(
    args: argparse.Namespace, results: list[dict], scaling: list[dict], crops: dict | None = None
) -> DocsResults:
    """The documentation's tables (ms per clip of each decoder, median and range over the
    alternating rounds; DataLoader workers) and a plot of the training pipeline's cost."""
    docs = DocsResults("data" if args.dataset == "kinetics" else f"data-{args.dataset}")
    decoders = list(dict.fromkeys(r["decoder"] for r in results))
    clips = "32 frames by segments" if SPECS[args.dataset].sampling == "segments" else "32 x 2 frames"
    clock = "wall-clock" if getattr(args, "device", "cpu") == "cuda" else "CPU"
    docs.text(
        f"ms of {clock} time per training clip ({clips}; one thread), median (range) of {args.rounds} "
        f"alternating rounds, {args.videos} videos per size. bare: the decoder library alone reading "
        "the clip's frames (bare 256: resizing them to short side 256 in its colour conversion); train: the package's training sample (random resized crop 224 from the "
        "decoded frames, flip, normalised); train 256: the same from frames resized to short side 256 "
        "while decoding (Video Swin's order); views: ms per video of its 4 x 3 test views (short side "
        "256, crop 224). k = `clips_per_video`; cores = CPU cores to feed "
        f"{CLIPS_PER_SECOND} clips/s with the cheapest decoder:"
    )
    header, *rows = table_rows(results, decoders)
    docs.table(header, rows)
    if crops:
        docs.text(
            f"Short side {args.train_short_side} before the random resized crop (Video Swin's order, "
            "`train_short_side`) against cropping the decoded frames: 50 crops of the same relative "
            "regions resized to 224 both ways; sharpness = mean gradient magnitude, resized first / "
            "cropped directly:"
        )
        docs.table(
            ["videos", "mean difference (levels of 255)", "PSNR (dB, median)", "sharpness"],
            [
                [n, f"{c['mean_abs']:.2f}", f"{c['psnr_db']:.1f}", f"{c['sharpness']:.2f}x"]
                for n, c in crops.items()
            ],
        )
    if scaling:
        docs.text(
            f"DataLoader workers ({decoders[0]}, wall clock; one torch thread and one decoder thread each):"
        )
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
    trains = [r for r in results if r["what"].startswith("train")]
    groups = list(dict.fromkeys((r["videos"], r["what"], r["k"]) for r in trains))
    figure = Figure(figsize=(max(6.0, 0.9 * len(groups)), 3.8))
    axes = figure.subplots()
    width = 0.8 / max(1, len(decoders))
    for j, decoder in enumerate(decoders):
        values = {(r["videos"], r["what"], r["k"]): r for r in trains if r["decoder"] == decoder}
        positions = [g + (j - (len(decoders) - 1) / 2) * width for g in range(len(groups))]
        medians = [values[g]["ms"] if g in values else float("nan") for g in groups]
        errors = [
            [values[g]["ms"] - values[g]["low"] if g in values else 0 for g in groups],
            [values[g]["high"] - values[g]["ms"] if g in values else 0 for g in groups],
        ]
        axes.bar(positions, medians, width, yerr=errors, label=decoder)
    axes.set_xticks(
        list(range(len(groups))), [f"{v}\n{w} k={k}" for v, w, k in groups], fontsize=6, rotation=60
    )
    axes.set_ylabel(f"ms of {clock} per training clip")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    docs.figure(figure, "ms per training clip for each decoder, median and range of the rounds")
    return docs


if __name__ == "__main__":
    main()
