"""``videoswinv2 export --ckpt CKPT --format onnx|pt2 --output FILE``: a model for deployment,
checked against PyTorch before it is written (see ``videoswinv2.inference.export``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from videoswinv2.commands._inference import positive_int
from videoswinv2.errors import UsageError
from videoswinv2.inference.export import FORMATS, MAX_ABS_DIFF, export_model
from videoswinv2.inference.loading import load_model
from videoswinv2.inference.outputs import check_writable

PROG = "videoswinv2 export"
SINGULAR = {"logits": "logit", "probabilities": "probability"}  # of the exported outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ckpt", required=True, help="Lightning checkpoint, or a .pth/.safetensors state dict with --model"
    )
    parser.add_argument("--output", required=True, help="the file to write: .onnx or .pt2")
    parser.add_argument("--format", choices=FORMATS, help="onnx or pt2 (default: the --output suffix)")
    parser.add_argument("--model", help="model name, for a plain state dict (e.g. videoswinv2_base)")
    parser.add_argument(
        "--classes", help="class names file, one per line (default: the checkpoint's, or Kinetics-400)"
    )
    parser.add_argument(
        "--num-frames", type=positive_int, help="clip frames T (default: the checkpoint's views)"
    )
    parser.add_argument(
        "--crop-size", type=positive_int, help="clip side H = W (default: the checkpoint's views)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    fmt = args.format or output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UsageError(f"--output {output}: say --format onnx or --format pt2 (or use that suffix)")
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder: name a .{fmt} file")
    if output.exists() and not args.overwrite:
        raise UsageError(f"--output {output} exists: choose another file, or add --overwrite")
    if not output.parent.is_dir():
        raise UsageError(f"--output {output}: the folder {output.parent} does not exist")
    check_writable(output, "--output")
    loaded = load_model(args.ckpt, model=args.model, classes_file=args.classes)
    short_side = None if args.crop_size is None else max(args.crop_size, loaded.views.short_side)
    loaded.views = loaded.views.overridden(
        num_frames=args.num_frames, crop_size=args.crop_size, short_side=short_side
    )
    result = export_model(loaded, fmt, output)  # an ExportError (exit 1) when it computes otherwise
    shape = ", ".join(map(str, result.input_shape[1:]))
    print(
        f"wrote {result.path}: clips (B, {shape}) float32 -> {result.output} (B, {len(loaded.classes)}), "
        "B dynamic; metadata: model, classes, views, preprocessing"
    )
    print(
        f"checked against PyTorch fp32 on batches of {' and '.join(map(str, result.batch_sizes))}: "
        f"max abs {SINGULAR[result.output]} difference {result.max_abs_diff:.2e} (limit {MAX_ABS_DIFF:g}); "
        f"{result.seconds:.0f} s"
    )
    return 0
