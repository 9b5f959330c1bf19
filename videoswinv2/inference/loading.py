"""The model a command runs: a Lightning checkpoint of ``VideoClassifier`` (or, for features, of
``MaskedVideoPretraining``), or a plain state dict, which needs the model's name (``--model``, or
its safetensors header's). What a file records of its model (name, classes, views, multi-label)
is its :class:`~videoswinv2.record.ModelRecord`; without one, the views are the Kinetics recipe's
and the classifier single-label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from videoswinv2.checkpoints.io import CheckpointError, read_raw_checkpoint
from videoswinv2.checkpoints.records import read_lightning_checkpoint
from videoswinv2.data.annotations import read_class_names
from videoswinv2.errors import UsageError
from videoswinv2.record import EvalViews, ModelRecord, kinetics400_classes
from videoswinv2.training.module import VideoClassifier
from videoswinv2.training.pretraining import MaskedVideoPretraining


@dataclass
class LoadedModel:
    """A model ready for ``Trainer.predict``, its class names, the views it was evaluated with,
    when its classifier is known never to have been trained, why, and what its file records
    (``record.multi_label``: the module's, whichever file it came from)."""

    module: VideoClassifier | MaskedVideoPretraining
    classes: list[str]
    views: EvalViews
    untrained_head: str | None = None
    record: ModelRecord = field(default_factory=ModelRecord)


def _fresh_head(path: Path, state_dict: dict[str, torch.Tensor], prefix: str = "") -> str | None:
    """Why the classifier is as the model initialises it (bias exactly zero): never trained."""
    bias = state_dict.get(f"{prefix}head.fc.bias")
    if bias is not None and not bias.any():
        return f"{path} holds a classifier that was never trained (its bias is still zero)"
    return None


def load_model(
    ckpt: str | Path, *, model: str | None = None, classes_file: str | None = None, need_head: bool = True
) -> LoadedModel:
    """Build the model of ``ckpt`` on the CPU, in eval mode; ``need_head`` (prediction) also
    requires class names for its classifier."""
    path = Path(ckpt)
    if not path.exists():
        raise UsageError(f"checkpoint {path} does not exist")
    lightning_ckpt = read_lightning_checkpoint(path)
    untrained = None
    if lightning_ckpt is not None:
        record = ModelRecord.from_lightning(lightning_ckpt)
        if model is not None and model != record.model:
            raise UsageError(
                f"--model {model} disagrees with {path}, a {record.model} checkpoint: drop --model"
            )
        pretraining = record.pretraining
        if pretraining and need_head:
            raise CheckpointError(
                f"{path} is a masked-pretraining checkpoint: it has no classifier. Fine-tune it first "
                f"(--model.init_args.pretrained {path}), or take its features with videoswinv2 extract-features"
            )
        module_class = MaskedVideoPretraining if pretraining else VideoClassifier
        # A run trained with `compile` would compile again here, minutes before the first video
        # on CPU; predict and extract-features run the model as it is.
        module = module_class.load_from_checkpoint(path, map_location="cpu", weights_only=True, compile=False)
        if not pretraining:
            untrained = _fresh_head(path, lightning_ckpt["state_dict"], "backbone.")
    else:
        raw = read_raw_checkpoint(path)
        state_dict = raw.tensors
        # Only a safetensors header records the model (`videoswinv2 inflate` writes it there).
        record = ModelRecord.from_strings(raw.metadata if path.suffix == ".safetensors" else {}, str(path))
        name = model or record.model
        if name is None:
            raise CheckpointError(f"{path} is a plain state dict: say which model it is with --model")
        if "head.fc.weight" not in state_dict:
            raise CheckpointError(
                f"{path} has no head.fc.weight: it is not a videoswinv2 classifier state dict"
            )
        num_classes = state_dict["head.fc.weight"].shape[0]
        module = VideoClassifier(
            name,
            num_classes=num_classes,
            multi_label=record.multi_label,
            model_kwargs=dict(record.model_kwargs),
        )
        module.backbone.load_state_dict(state_dict, strict=True)
        if record.source is not None:
            untrained = (
                f"{path} was inflated from the 2D image checkpoint {record.source}: its classifier "
                "was never trained on video classes"
            )
        else:
            untrained = _fresh_head(path, state_dict)
    views = record.eval_views
    num_classes = module.hparams.get("num_classes", 0)  # a pretraining module has no classifier
    classes = read_class_names(classes_file) if classes_file is not None else list(record.classes)
    if need_head and not classes:
        if num_classes != 400:
            raise UsageError(f"the model has {num_classes} classes: name them with --classes FILE")
        classes = kinetics400_classes()
    if need_head and len(classes) != num_classes:
        raise UsageError(f"{len(classes)} class names for a model with {num_classes} classes")
    return LoadedModel(module.eval(), classes, views, untrained, record)
