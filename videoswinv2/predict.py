"""``videoswinv2 predict VIDEO ... --ckpt CKPT``: top-k classes of videos with multi-view testing.

The checkpoint is a Lightning checkpoint written by ``VideoClassifier`` (it carries the model
name, its settings, the class names and the data settings), or a plain / inflated state dict
(``.pth`` or ``.safetensors``) together with ``--model``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from videoswinv2.checkpoints.io import CheckpointError, read_raw_checkpoint, unwrap_state_dict
from videoswinv2.data import (
    KineticsDataModule,
    VideoDecodeError,
    kinetics400_classes,
    load_test_views,
    read_class_names,
)
from videoswinv2.models import SwinTransformerV2_3D, create_model
from videoswinv2.training.evaluation import average_view_probabilities
from videoswinv2.training.module import CHECKPOINT_KEY

# Data settings a Lightning checkpoint may carry (KineticsDataModule's arguments) -> predict's.
_DATA_SETTINGS = {
    "num_frames": "num_frames",
    "frame_interval": "frame_interval",
    "target_fps": "target_fps",
    "test_short_side": "short_side",
    "test_crop_size": "crop_size",
    "num_test_clips": "views",
    "decoder": "decoder",
}
# Without a Lightning checkpoint, the data module's own defaults apply.
_DATA_DEFAULTS = {
    ours: inspect.signature(KineticsDataModule).parameters[theirs].default
    for theirs, ours in _DATA_SETTINGS.items()
}


@dataclass
class Predictor:
    """A backbone with its class names and the data settings its views are built with."""

    model: SwinTransformerV2_3D
    classes: list[str]
    data: dict[str, Any]


def _lightning_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint dict if ``path`` is a Lightning checkpoint of ours, else None."""
    if path.suffix == ".safetensors" or path.is_dir():
        return None
    from videoswinv2.data import SyntheticSpec

    try:
        # Lightning checkpoints hold hyper-parameters beside the weights; allow our own dataclass.
        with torch.serialization.safe_globals([SyntheticSpec]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None  # not loadable as such: read_raw_checkpoint gives the precise error
    return obj if isinstance(obj, dict) and CHECKPOINT_KEY in obj else None


def load_predictor(
    ckpt: str | Path, *, model: str | None = None, classes_file: str | None = None, device: str = "cpu"
) -> Predictor:
    """Build the model of a Lightning checkpoint, or ``model`` for a plain state dict."""
    path = Path(ckpt)
    lightning_ckpt = _lightning_checkpoint(path)
    data = dict(_DATA_DEFAULTS)
    if lightning_ckpt is not None:
        info = lightning_ckpt[CHECKPOINT_KEY]
        name, kwargs, classes = info["model"], dict(info["model_kwargs"]), list(info["classes"])
        prefix = "backbone."
        state_dict = {
            k[len(prefix) :]: v for k, v in lightning_ckpt["state_dict"].items() if k.startswith(prefix)
        }
        hparams = lightning_ckpt.get("datamodule_hyper_parameters", {})
        data.update({ours: hparams[theirs] for theirs, ours in _DATA_SETTINGS.items() if theirs in hparams})
    else:
        state_dict = unwrap_state_dict(read_raw_checkpoint(path).tensors, str(path))
        metadata = _safetensors_metadata(path)
        name = model or metadata.get("model")
        if name is None:
            raise CheckpointError(f"{path} is a plain state dict: say which model it is with --model")
        if "head.fc.weight" not in state_dict:
            raise CheckpointError(
                f"{path} has no head.fc.weight: it is not a videoswinv2 classifier state dict"
            )
        kwargs = {"num_classes": state_dict["head.fc.weight"].shape[0]}
        if metadata.get("pretrained_window_sizes") not in (None, "null"):
            kwargs["pretrained_window_sizes"] = json.loads(metadata["pretrained_window_sizes"])
        classes = []
    if classes_file is not None:
        classes = read_class_names(classes_file)
    if not classes:
        if kwargs["num_classes"] != 400:
            raise ValueError(f"the model has {kwargs['num_classes']} classes: name them with --classes FILE")
        classes = kinetics400_classes()
    if len(classes) != kwargs["num_classes"]:
        raise ValueError(f"{len(classes)} class names for a model with {kwargs['num_classes']} classes")
    net = create_model(name, **kwargs)
    net.load_state_dict(state_dict, strict=True)
    return Predictor(net.to(device).eval(), classes, data)


def _safetensors_metadata(path: Path) -> dict[str, str]:
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


@torch.no_grad()
def predict_video(
    predictor: Predictor, video: str, *, topk: int = 5, max_views_per_forward: int = 6
) -> list[tuple[str, float]]:
    """Top-k ``(class name, probability)`` of one video, softmax averaged over its views."""
    d = predictor.data
    views = load_test_views(
        video,
        num_frames=d["num_frames"],
        frame_interval=d["frame_interval"],
        num_clips=d["views"],
        short_side=d["short_side"],
        crop_size=d["crop_size"],
        decoder=d["decoder"],
        target_fps=d["target_fps"],
    )
    device = next(predictor.model.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    with autocast:
        probs = average_view_probabilities(
            predictor.model, views.unsqueeze(0).to(device), max_views_per_forward
        )[0]
    values, indices = probs.topk(min(topk, len(probs)))
    return [(predictor.classes[i], float(v)) for i, v in zip(indices.tolist(), values)]


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", help="video files")
    parser.add_argument(
        "--ckpt", required=True, help="Lightning checkpoint, or a .pth/.safetensors state dict with --model"
    )
    parser.add_argument("--model", help="model name, for a plain state dict (e.g. videoswinv2_base)")
    parser.add_argument(
        "--classes", help="class names file, one per line (default: the checkpoint's, or Kinetics-400)"
    )
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument(
        "--views",
        type=int,
        help="temporal clips per video, each seen in 3 crops (default: the checkpoint's test setting, else 4)",
    )
    parser.add_argument("--num-frames", type=int, help="frames per clip (default: the checkpoint's, else 32)")
    parser.add_argument(
        "--frame-interval", type=int, help="frame stride within a clip (default: the checkpoint's, else 2)"
    )
    parser.add_argument(
        "--decoder", choices=["pyav", "decord"], help="video decoder (default: the checkpoint's, else pyav)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def run_predict(args: argparse.Namespace) -> int:
    try:
        predictor = load_predictor(args.ckpt, model=args.model, classes_file=args.classes, device=args.device)
    except (CheckpointError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"videoswinv2 predict: error: {err}", file=sys.stderr)
        return 2
    for key in ("views", "num_frames", "frame_interval", "decoder"):
        if getattr(args, key) is not None:
            predictor.data[key] = getattr(args, key)
    failed = 0
    for video in args.videos:
        try:
            top = predict_video(predictor, video, topk=args.topk)
        except (VideoDecodeError, FileNotFoundError) as err:
            print(f"{video}: cannot read: {err}", file=sys.stderr)
            failed += 1
            continue
        print(video)
        for rank, (name, prob) in enumerate(top, 1):
            print(f"  {rank}. {name:<40} {prob:.4f}")
    return 1 if failed else 0
