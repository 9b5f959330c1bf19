"""The model a command runs: a Lightning checkpoint of ``VideoClassifier`` (or, for features, of
``MaskedVideoPretraining``), or a plain state dict.

A Lightning checkpoint is loaded with ``VideoClassifier.load_from_checkpoint`` and brings its
class names and evaluation views (the data module's saved settings). A plain state dict (a
``videoswinv2 inflate`` output, ``.pth`` or ``.safetensors``) needs the model name (``--model``, or
the name the safetensors header carries); its views are the data module's defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from videoswinv2.checkpoints.io import CheckpointError, read_raw_checkpoint
from videoswinv2.data.annotations import kinetics400_classes, read_class_names
from videoswinv2.data.views import EvalViews
from videoswinv2.training.module import CHECKPOINT_KEY, VideoClassifier
from videoswinv2.training.pretraining import PRETRAINING_CHECKPOINT_KEY, MaskedVideoPretraining


@dataclass
class LoadedModel:
    """A model ready for ``Trainer.predict``, its class names, the views it was evaluated with,
    and, when its classifier is known never to have been trained, why."""

    module: VideoClassifier | MaskedVideoPretraining
    classes: list[str]
    views: EvalViews
    untrained_head: str | None = None


def _lightning_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint dict (tensors memory-mapped) if ``path`` is a Lightning checkpoint of
    ``VideoClassifier`` or ``MaskedVideoPretraining``, else None."""
    if path.suffix == ".safetensors" or not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None  # not a checkpoint of ours: read_raw_checkpoint gives the precise error
    ours = isinstance(obj, dict) and (CHECKPOINT_KEY in obj or PRETRAINING_CHECKPOINT_KEY in obj)
    return obj if ours and "state_dict" in obj else None


def _fresh_head(state_dict: dict[str, torch.Tensor], prefix: str = "") -> bool:
    """Whether the classifier is as the model initialises it (bias exactly zero): never trained."""
    bias = state_dict.get(f"{prefix}head.fc.bias")
    return bias is not None and not bias.any()


def load_model(
    ckpt: str | Path, *, model: str | None = None, classes_file: str | None = None, need_head: bool = True
) -> LoadedModel:
    """Build the model of ``ckpt`` on the CPU, in eval mode; ``need_head`` (prediction) also
    requires class names for its classifier."""
    path = Path(ckpt)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    lightning_ckpt = _lightning_checkpoint(path)
    untrained = None
    if lightning_ckpt is not None and PRETRAINING_CHECKPOINT_KEY in lightning_ckpt:
        if need_head:
            raise CheckpointError(
                f"{path} is a masked-pretraining checkpoint: it has no classifier. Fine-tune it first "
                f"(--model.init_args.pretrained {path}), or take its features with videoswinv2 extract-features"
            )
        # The encoder alone: features as the fine-tuned classifier's backbone would compute them.
        module = MaskedVideoPretraining.load_from_checkpoint(
            path, map_location="cpu", weights_only=True, compile=False
        )
        classes = []
        views = EvalViews.from_datamodule(lightning_ckpt.get("datamodule_hyper_parameters") or {})
    elif lightning_ckpt is not None:
        # A run trained with `compile` would compile again here, minutes before the first video
        # on CPU; predict and extract-features run the model as it is.
        module = VideoClassifier.load_from_checkpoint(
            path, map_location="cpu", weights_only=True, compile=False
        )
        classes = list(lightning_ckpt[CHECKPOINT_KEY].get("classes") or [])
        views = EvalViews.from_datamodule(lightning_ckpt.get("datamodule_hyper_parameters") or {})
        if _fresh_head(lightning_ckpt["state_dict"], "backbone."):
            untrained = f"{path} holds a classifier that was never trained (its bias is still zero)"
    else:
        raw = read_raw_checkpoint(path)
        state_dict = raw.tensors
        # Only a safetensors header records the model (`videoswinv2 inflate` writes it there).
        metadata = raw.metadata if path.suffix == ".safetensors" else {}
        name = model or metadata.get("model")
        if name is None:
            raise CheckpointError(f"{path} is a plain state dict: say which model it is with --model")
        if "head.fc.weight" not in state_dict:
            raise CheckpointError(
                f"{path} has no head.fc.weight: it is not a videoswinv2 classifier state dict"
            )
        kwargs: dict[str, Any] = {}
        if metadata.get("pretrained_window_sizes") not in (None, "null"):
            kwargs["pretrained_window_sizes"] = json.loads(metadata["pretrained_window_sizes"])
        num_classes = state_dict["head.fc.weight"].shape[0]
        module = VideoClassifier(name, num_classes=num_classes, model_kwargs=kwargs)
        module.backbone.load_state_dict(state_dict, strict=True)
        classes, views = [], EvalViews()
        if "source" in metadata:
            untrained = (
                f"{path} was inflated from the 2D image checkpoint {metadata['source']}: its classifier "
                "was never trained on video classes"
            )
        elif _fresh_head(state_dict):
            untrained = f"{path} holds a classifier that was never trained (its bias is still zero)"
    num_classes = module.hparams.get("num_classes", 0)
    if classes_file is not None:
        classes = read_class_names(classes_file)
    if need_head and not classes:
        if num_classes != 400:
            raise ValueError(f"the model has {num_classes} classes: name them with --classes FILE")
        classes = kinetics400_classes()
    if need_head and len(classes) != num_classes:
        raise ValueError(f"{len(classes)} class names for a model with {num_classes} classes")
    return LoadedModel(module.eval(), classes, views, untrained)
