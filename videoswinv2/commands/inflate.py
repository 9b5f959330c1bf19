"""``videoswinv2 inflate SRC DST --model NAME``: write a 2D SwinV2 checkpoint as a 3D state dict."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from safetensors import SafetensorError

from videoswinv2.checkpoints import (
    TEMPORAL_INITS,
    CheckpointError,
    WindowSize,
    inflate_state_dict,
    read_2d_checkpoint,
    save_state_dict,
)
from videoswinv2.checkpoints.metadata import ModelMetadata

__all__ = ["add_arguments", "parse_window_sizes", "run"]


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``videoswinv2 inflate``."""
    parser.add_argument(
        "src",
        help="2D SwinV2 checkpoint: a .pth/.pt/.bin/.safetensors file or a Hugging Face save_pretrained folder "
        "(official, SimMIM, timm or Hugging Face layout)",
    )
    parser.add_argument("dst", help="where to write the 3D state dict: .safetensors or .pth")
    parser.add_argument("--model", required=True, help="3D model name, e.g. videoswinv2_base")
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
    """Inflate ``args.src`` into a ``args.model`` state dict at ``args.dst``; print the report. Exit code."""
    from videoswinv2 import create_model  # lazily: the model factory imports the checkpoints package

    if not Path(args.dst).parent.is_dir():  # checked first: reading and inflating take a while
        return _error(f"cannot write {args.dst}: the folder {Path(args.dst).parent} does not exist")
    try:
        ckpt = read_2d_checkpoint(args.src)
        windows, origin = _choose_window_sizes(args.pretrained_window_sizes, ckpt.pretrained_window_sizes)
        if windows is not None and len(windows) != len(ckpt.depths):
            raise CheckpointError(
                f"--pretrained-window-sizes has {len(windows)} entries; the checkpoint has {len(ckpt.depths)} stages"
            )
        overrides = {} if windows is None else {"pretrained_window_sizes": windows}
        model = create_model(args.model, num_classes=args.num_classes, **overrides)
        state_dict, report = inflate_state_dict(ckpt, model.state_dict(), temporal_init=args.temporal_init)
        model.load_state_dict(state_dict, strict=True)  # the file must load exactly like this
        metadata = ModelMetadata(
            model=args.model,
            num_classes=args.num_classes,
            model_kwargs={"pretrained_window_sizes": windows},
            source=str(args.src),
            temporal_init=args.temporal_init,
        )
        save_state_dict(state_dict, args.dst, metadata.to_strings())
    except ValueError as err:  # CheckpointError, InflationError, or an unknown model name
        return _error(str(err))
    except (OSError, SafetensorError) as err:  # writing dst: a read-only folder, a full disk
        return _error(f"cannot write {args.dst}: {getattr(err, 'strerror', None) or err}")
    print(report)
    print(f"pretrained window sizes: {windows or 'none'} ({origin})")
    call = f"create_model({args.model!r}, num_classes={args.num_classes}"
    call += f", pretrained_window_sizes={windows})" if windows else ")"
    print(f"wrote {args.dst}; load it into {call} with load_state_dict(..., strict=True)")
    return 0


def _error(message: str) -> int:
    print(f"videoswinv2 inflate: error: {message}", file=sys.stderr)
    return 1


def _choose_window_sizes(
    given: tuple[WindowSize, ...] | None, shown: tuple[WindowSize, ...] | None
) -> tuple[tuple[WindowSize, ...] | None, str]:
    if given is not None:
        return given, "given on the command line"
    if shown is not None:
        return shown, "shown by the checkpoint"
    hint = "the checkpoint does not show them: pass --pretrained-window-sizes if it was trained with other windows"
    return None, hint
