"""``videoswinv2 inflate SRC DST --model NAME``: write a 2D SwinV2 checkpoint as a 3D state dict."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from videoswinv2.checkpoints import (
    TEMPORAL_INITS,
    Checkpoint,
    WindowSize,
    inflate_state_dict,
    read_2d_checkpoint,
    save_state_dict,
)
from videoswinv2.errors import UsageError, WorkFailed
from videoswinv2.models import create_model
from videoswinv2.record import (
    ARCHITECTURE_FIELDS,
    VARIANTS,
    ModelRecord,
    closest_variant,
    list_models,
    variant_differences,
)


def parse_window_sizes(text: str) -> tuple[WindowSize, ...]:
    """``"12,12,12,6"`` -> ``(12, 12, 12, 6)``; a stage may be ``TxHxW`` (``"0x12x12"``), 0 = none."""
    windows: list[WindowSize] = []
    for item in text.replace(" ", ",").split(","):
        if not item:
            continue
        try:
            parts = tuple(int(p) for p in item.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad window size {item!r}: use S or TxHxW per stage") from None
        if len(parts) not in (1, 3) or min(parts) < 0:
            raise argparse.ArgumentTypeError(
                f"bad window size {item!r}: use S or TxHxW (ints >= 0) per stage"
            )
        windows.append(parts[0] if len(parts) == 1 else parts)  # type: ignore[arg-type]
    if not windows:
        raise argparse.ArgumentTypeError("no window sizes given")
    return tuple(windows)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.replace(" ", ",").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``videoswinv2 inflate``."""
    parser.add_argument(
        "src",
        help="2D SwinV2 checkpoint: a .pth/.pt/.bin/.safetensors file or a Hugging Face save_pretrained folder "
        "(official, SimMIM, timm or Hugging Face layout)",
    )
    parser.add_argument("dst", help="where to write the 3D state dict: .safetensors or .pth")
    parser.add_argument("--model", required=True, help="3D model name, e.g. videoswinv2_base")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    # Architecture overrides, for 2D checkpoints of no named variant (the error names the ones to use).
    parser.add_argument("--embed-dim", type=int, help="override the variant's embed_dim")
    parser.add_argument("--depths", type=_ints, metavar="D,D,...", help="override the blocks per stage")
    parser.add_argument("--num-heads", type=_ints, metavar="H,H,...", help="override the heads per stage")
    parser.add_argument("--mlp-ratio", type=float, help="override the MLP width ratio")
    parser.add_argument(
        "--num-classes",
        type=int,
        default=400,
        help="classes of the 3D head (default 400); the 2D classifier is kept only if it has as many",
    )
    parser.add_argument(
        "--temporal-init",
        choices=TEMPORAL_INITS,
        default="average",
        help="patch kernel over time: average (default: the 2D kernel / T on every frame) or center (middle frame)",
    )
    parser.add_argument(
        "--pretrained-window-sizes",
        type=parse_window_sizes,
        default=None,
        metavar="S,S,S,S",
        help="per stage, the window the 2D checkpoint's position bias was trained with, e.g. 12,12,12,6 "
        "(TxHxW also accepted; 0 = none); default: what the checkpoint shows, else none",
    )


def run(args: argparse.Namespace) -> int:
    """Inflate ``args.src`` into a ``args.model`` state dict at ``args.dst``; print the report."""
    # Checked first: reading and inflating take a while, and nothing the user has may be replaced.
    src, dst = Path(args.src), Path(args.dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise UsageError(f"{dst} is the checkpoint to inflate: choose another output file")
    if dst.is_dir():
        raise UsageError(f"{dst} is a folder: name the output file, e.g. {dst / 'model.safetensors'}")
    if dst.exists() and not args.overwrite:
        raise UsageError(f"{dst} exists: pass --overwrite to replace it, or choose another output file")
    if not dst.parent.is_dir():
        raise UsageError(f"cannot write {dst}: the folder {dst.parent} does not exist")
    if not src.exists():
        raise UsageError(f"{src}: no such checkpoint file or folder")
    if args.model not in VARIANTS:
        raise UsageError(f"unknown model {args.model!r}: choose one of {', '.join(list_models())}")
    overrides = {k: getattr(args, k) for k in ARCHITECTURE_FIELDS if getattr(args, k) is not None}
    ckpt = read_2d_checkpoint(args.src)  # a CheckpointError says what the file is instead
    mismatch = _architecture_mismatch(ckpt, args.model, overrides)
    if mismatch:
        raise UsageError(mismatch)
    windows = args.pretrained_window_sizes or ckpt.pretrained_window_sizes
    if args.pretrained_window_sizes:
        origin = "given on the command line"
    elif windows:
        origin = "shown by the checkpoint"
    else:
        origin = "the checkpoint does not show them: pass --pretrained-window-sizes if it was trained with other windows"
    if windows is not None and len(windows) != len(ckpt.depths):
        raise UsageError(
            f"--pretrained-window-sizes has {len(windows)} entries; the checkpoint has {len(ckpt.depths)} stages"
        )
    kwargs = overrides if windows is None else {**overrides, "pretrained_window_sizes": windows}
    try:
        model = create_model(args.model, num_classes=args.num_classes, **kwargs)
    except ValueError as error:  # settings the model refuses (heads that do not divide the width)
        raise UsageError(str(error)) from None
    # An InflationError (a UsageError) names every key that does not fit.
    state_dict, report = inflate_state_dict(ckpt, model.state_dict(), temporal_init=args.temporal_init)
    model.load_state_dict(state_dict, strict=True)  # the file must load exactly like this
    metadata = ModelRecord(
        model=args.model,
        num_classes=args.num_classes,
        model_kwargs={**overrides, "pretrained_window_sizes": windows},
        source=str(args.src),
        temporal_init=args.temporal_init,
    )
    try:  # an existing DST stays whole if writing fails
        save_state_dict(state_dict, dst, metadata.to_strings())
    except (OSError, SafetensorError) as err:  # a read-only folder, a full disk
        raise WorkFailed(f"cannot write {dst}: {getattr(err, 'strerror', None) or err}") from None
    print(report)
    print(f"pretrained window sizes: {windows or 'none'} ({origin})")
    call = ", ".join([repr(args.model), f"num_classes={args.num_classes}", *_keywords(kwargs)])
    print(f"wrote {dst}; load it into create_model({call}) with load_state_dict(..., strict=True)")
    return 0


def _architecture_mismatch(ckpt: Checkpoint, model: str, overrides: dict[str, Any]) -> str | None:
    """Why ``ckpt`` cannot fit ``model`` with ``overrides``, naming the flags that would fit, or None."""
    held = {key: getattr(ckpt, key) for key in ARCHITECTURE_FIELDS}
    differs = variant_differences(model, overrides, **held)
    if not differs:
        return None
    name, fit = closest_variant(**held)
    flags = " ".join([f"--model {name}", *(f"--{k.replace('_', '-')} {_flag(v)}" for k, v in fit.items())])
    held_text = ", ".join(f"{key}={_flag(value)}" for key, value in differs.items())
    return f"{ckpt.source} holds a SwinV2 with {held_text}, which {model} does not have: use {flags}"


def _flag(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else f"{value:g}"


def _keywords(kwargs: dict[str, Any]) -> list[str]:
    return [f"{key}={tuple(v) if isinstance(v, list) else v}" for key, v in kwargs.items()]
