"""Options and set-up shared by ``videoswinv2 predict``, ``extract-features`` and ``timeline``."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from videoswinv2.data.decoding import DECODERS, check_decoder
from videoswinv2.data.view_stream import Task, multi_view_tasks
from videoswinv2.errors import UsageError
from videoswinv2.inference.engine import keep_freed_memory, predict_videos, resolve_accelerator
from videoswinv2.inference.inputs import collect_videos
from videoswinv2.inference.loading import LoadedModel, load_model
from videoswinv2.inference.outputs import file_sha256, resolved
from videoswinv2.inference.precision import PRECISIONS, choose_precision, cpu_flags
from videoswinv2.inference.writers import ResultWriter
from videoswinv2.record import EvalViews
from videoswinv2.training.evaluation import DEFAULT_THRESHOLD


def _at_least(kind: type, minimum: float, above: bool = False, maximum: float | None = None):
    """An argparse type: a finite ``kind`` (int or float) >= ``minimum`` (> with ``above``) and, if
    given, <= ``maximum``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if above else '>='} {minimum}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {text}")
        return value

    parse.__name__ = f"{'integer' if kind is int else 'number'} {'>' if above else '>='} {minimum}"
    if maximum is not None:
        parse.__name__ += f" and <= {maximum}"
    return parse


positive_int = _at_least(int, 1)
positive_float = _at_least(float, 0, above=True)
non_negative_float = _at_least(float, 0)
probability = _at_least(float, 0, maximum=1)


def add_inference_arguments(parser: argparse.ArgumentParser, clips: bool = True) -> None:
    """Inputs, model, views and engine options common to the commands (``clips``: the number of
    temporal clips is an option; a timeline's windows are not)."""
    parser.add_argument(
        "inputs",
        nargs="+",
        help="video files, folders (searched recursively) and text files listing one video per line",
    )
    parser.add_argument(
        "--ckpt", required=True, help="Lightning checkpoint, or a .pth/.safetensors state dict with --model"
    )
    parser.add_argument("--model", help="model name, for a plain state dict (e.g. videoswinv2_base)")
    views = parser.add_argument_group(
        "views (default: the checkpoint's test settings, else 4 clips of 32x2, 224)"
    )
    if clips:
        views.add_argument(
            "--views", type=positive_int, help="temporal clips per video, each seen in 3 crops"
        )
    views.add_argument("--num-frames", type=positive_int, help="frames per clip")
    views.add_argument("--frame-interval", type=positive_int, help="frame stride within a clip")
    views.add_argument("--short-side", type=positive_int, help="resize of the short side before cropping")
    views.add_argument("--crop-size", type=positive_int, help="side of the square crops")
    views.add_argument("--decoder", choices=DECODERS)
    views.add_argument(
        "--decode-device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cuda: decode on the GPU (NVDEC) in the main process, with torchcodec (the default "
        "decoder then); codecs it cannot decode, or no GPU, fall back to the CPU, said in the log",
    )
    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--batch-size",
        type=positive_int,
        help="views per forward pass, across videos (default: 12 on GPUs, 6 on CPU, measured fastest there)",
    )
    engine.add_argument(
        "--num-workers",
        type=_at_least(int, 0),
        default=min(4, os.cpu_count() or 1),
        help="decoding processes (default: min(4, CPUs)); 0 decodes in the main process",
    )
    engine.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    engine.add_argument("--devices", type=positive_int, default=1, help="devices (GPUs) to share the videos")
    engine.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 autocast on CUDA and on CPUs with AMX or AVX512-BF16, else fp32",
    )
    engine.add_argument(
        "--overwrite",
        action="store_true",
        help="redo every video, also those an earlier run of other settings wrote (never a file "
        "videoswinv2 did not write)",
    )
    engine.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_threshold_argument(parser: argparse.ArgumentParser, effect: str) -> None:
    """``--threshold``: what a multi-label model predicts (a single-label model refuses it);
    ``effect`` says what the command does with it."""
    parser.add_argument(
        "--threshold",
        type=probability,
        help=f"multi-label models: a class is predicted where its probability (its own sigmoid) "
        f"reaches this (default {DEFAULT_THRESHOLD}): {effect}. Refused for a single-label model, "
        "whose classes share one softmax",
    )


def _threshold(args: argparse.Namespace, loaded: LoadedModel) -> float | None:
    """The threshold of a multi-label model; None for a single-label one, or a command without
    ``--threshold`` (features)."""
    if not hasattr(args, "threshold"):
        return None
    if not loaded.record.multi_label:
        if args.threshold is not None:
            raise UsageError(
                f"--threshold is for multi-label models; {args.ckpt} is single-label (one softmax over "
                "its classes: the top-1 is its prediction): drop --threshold"
            )
        return None
    return DEFAULT_THRESHOLD if args.threshold is None else args.threshold


@dataclass
class Setup:
    """What a command runs: the model, its views, the videos, where and in which precision, and
    a multi-label model's ``threshold`` (None: single-label)."""

    loaded: LoadedModel
    views: EvalViews
    videos: list[str]
    accelerator: str
    precision: str
    checkpoint_sha256: str
    decode_device: str = "cpu"
    threshold: float | None = None

    def settings(self, **extra: Any) -> dict[str, Any]:
        """What an output's rows depend on, recorded beside it (see ``inference.outputs``)."""
        hparams = self.loaded.module.hparams
        return {
            "checkpoint_sha256": self.checkpoint_sha256,
            "model": hparams.model,
            "model_kwargs": dict(hparams.model_kwargs or {}),
            "views": asdict(self.views),
            "precision": self.precision,
            # Only where there is one: a single-label output's record stays as it was.
            **({"threshold": self.threshold} if self.threshold is not None else {}),
            **extra,
        }


def prepare(args: argparse.Namespace, need_head: bool) -> Setup:
    """Read the inputs and the model; bad input raises a ``UsageError``."""
    videos = collect_videos(args.inputs)
    if not videos:
        raise UsageError(f"no videos found in {' '.join(args.inputs)}")
    loaded = load_model(
        args.ckpt, model=args.model, classes_file=getattr(args, "classes", None), need_head=need_head
    )
    views = loaded.views.overridden(  # a UsageError for views that cannot be
        num_clips=getattr(args, "views", None),
        num_frames=args.num_frames,
        frame_interval=args.frame_interval,
        short_side=args.short_side,
        crop_size=args.crop_size,
        decoder=args.decoder or ("torchcodec" if args.decode_device == "cuda" else None),
    )
    check_decoder(views.decoder)
    if args.decode_device == "cuda" and views.decoder != "torchcodec":
        raise UsageError(f"--decode-device cuda decodes with torchcodec, not --decoder {views.decoder}")
    accelerator = resolve_accelerator(args.device)
    precision = choose_precision(args.precision, accelerator, cpu_flags())
    threshold = _threshold(args, loaded)
    return Setup(
        loaded, views, videos, accelerator, precision, file_sha256(args.ckpt), args.decode_device, threshold
    )


def warn_untrained(prog: str, setup: Setup) -> None:
    if setup.loaded.untrained_head:
        print(
            f"{prog}: warning: {setup.loaded.untrained_head}; the class names below are not predictions "
            "until it is fine-tuned",
            file=sys.stderr,
        )


def report(prog: str, total: int, skipped: int, failed: list[tuple[str, str]], where: str) -> int:
    """The summary line (and one line per failed video) on stderr; the exit code."""
    done = total - skipped - len(failed)
    line = f"{prog}: {done} videos done, {len(failed)} failed"
    if skipped:
        line += f", {skipped} skipped (already in {where}; --overwrite redoes them)"
    print(line + (f"; wrote {where}" if where else ""), file=sys.stderr)
    for path, reason in failed:
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def run_tasks(
    prog: str,
    args: argparse.Namespace,
    setup: Setup,
    writer: ResultWriter,
    done: set[str],
    where: str,
    make_tasks: Callable[[list[str]], Sequence[Task]] | None = None,
) -> int:
    """Run the engine over the tasks (default: the evaluation views) of the videos not ``done`` by
    an earlier run (by resolved path), print the summary; the exit code."""
    videos = [video for video in setup.videos if resolved(video) not in done]
    tasks = make_tasks(videos) if make_tasks else multi_view_tasks(videos, setup.views, setup.decode_device)
    if tasks:
        if setup.accelerator == "cpu":  # this process only runs the model from here on
            keep_freed_memory()
        trainer = predict_videos(
            setup.loaded.module,
            tasks,
            writer,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            accelerator=setup.accelerator,
            devices=args.devices,
            precision=setup.precision,
        )
        if not trainer.is_global_zero:
            return 0
    failed = list(dict(writer.failed).items())  # one line per video (a timeline's parts may each fail)
    return report(prog, len(setup.videos), len(setup.videos) - len(videos), failed, where)
