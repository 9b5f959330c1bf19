"""What the package records beside a model's weights, read and written in one place.

:class:`ModelMetadata` holds the model's name and constructor arguments, its class names, the
views it is evaluated in (the fields of :class:`~videoswinv2.data.views.EvalViews`) and, for a
``videoswinv2 inflate`` output, the 2D checkpoint it came from. Where it lives:

- a Lightning checkpoint of ``VideoClassifier`` or ``MaskedVideoPretraining``: the model in
  ``hyper_parameters`` (``model``, ``num_classes``, ``model_kwargs``), class names and views under
  ``checkpoint["videoswinv2"]`` (checkpoints written before the views were recorded there: the
  data module's saved settings); a pretraining checkpoint is also marked by
  ``checkpoint["videoswinv2_pretraining"]``;
- a safetensors header, ONNX ``metadata_props`` and the extra file ``videoswinv2.json`` of a
  ``.pt2``: string values (:meth:`ModelMetadata.to_strings`), JSON where not plain text; exported
  models add the input's preprocessing (:func:`preprocessing_strings`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .io import CheckpointError, PathLike

LIGHTNING_KEY = "videoswinv2"  # a Lightning checkpoint's entry for what the hyper-parameters lack
PRETRAINING_KEY = "videoswinv2_pretraining"  # marks a checkpoint of MaskedVideoPretraining (no classifier)
PT2_EXTRA_FILE = "videoswinv2.json"  # the extra file of an exported .pt2 holding the strings
_JSON_KEYS = ("model_kwargs", "pretrained_window_sizes", "classes", "views")


@dataclass(frozen=True)
class ModelMetadata:
    """The package's record of a model. ``model_kwargs`` includes ``pretrained_window_sizes``
    when known; ``views`` maps ``EvalViews`` field names to values (None: unknown)."""

    model: str | None = None
    num_classes: int | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    views: Mapping[str, Any] | None = None
    source: str | None = None
    temporal_init: str | None = None

    @property
    def pretrained_window_sizes(self) -> Any:
        return self.model_kwargs.get("pretrained_window_sizes")

    # -- string maps: safetensors headers, exported files -----------------------------------------

    def to_strings(self) -> dict[str, str]:
        """Every known field as text (JSON for lists and mappings)."""
        kwargs = dict(self.model_kwargs)
        values: dict[str, Any] = {"model": self.model, "num_classes": self.num_classes}
        if "pretrained_window_sizes" in kwargs:  # its own key, as every inflate output has it
            values["pretrained_window_sizes"] = kwargs.pop("pretrained_window_sizes")
        values.update(
            model_kwargs=kwargs or None,
            classes=list(self.classes) or None,
            views=dict(self.views) if self.views else None,
            source=self.source,
            temporal_init=self.temporal_init,
        )
        return {
            key: json.dumps(value) if key in _JSON_KEYS else str(value)
            for key, value in values.items()
            if value is not None or key == "pretrained_window_sizes"
        }

    @classmethod
    def from_strings(cls, strings: Mapping[str, str], source: str = "the file's metadata") -> ModelMetadata:
        """The inverse of :meth:`to_strings`; keys it does not know are ignored."""
        parsed: dict[str, Any] = {}
        for key in _JSON_KEYS:
            if key in strings:
                try:
                    parsed[key] = json.loads(strings[key])
                except ValueError:
                    raise CheckpointError(
                        f"{source}: {key} is not valid JSON: {strings[key][:80]!r}"
                    ) from None
        kwargs = dict(parsed.get("model_kwargs") or {})
        if parsed.get("pretrained_window_sizes") is not None:
            kwargs["pretrained_window_sizes"] = parsed["pretrained_window_sizes"]
        num_classes = strings.get("num_classes")
        return cls(
            model=strings.get("model"),
            num_classes=int(num_classes) if num_classes not in (None, "") else None,
            model_kwargs=kwargs,
            classes=tuple(parsed.get("classes") or ()),
            views=parsed.get("views"),
            source=strings.get("source"),
            temporal_init=strings.get("temporal_init"),
        )

    # -- Lightning checkpoints -------------------------------------------------------------------

    @classmethod
    def from_lightning(cls, checkpoint: Mapping[str, Any]) -> ModelMetadata:
        """From a Lightning checkpoint dict (or the entries beside its ``state_dict``)."""
        hparams = checkpoint.get("hyper_parameters") or {}
        entry = checkpoint.get(LIGHTNING_KEY) or {}
        views = entry.get("views")
        if views is None and "datamodule_hyper_parameters" in checkpoint:
            from dataclasses import asdict

            from videoswinv2.data.views import EvalViews  # here: data imports heavier libraries

            views = asdict(EvalViews.from_datamodule(checkpoint["datamodule_hyper_parameters"] or {}))
        return cls(
            model=hparams.get("model"),
            num_classes=hparams.get("num_classes"),
            model_kwargs=dict(hparams.get("model_kwargs") or {}),
            classes=tuple(entry.get("classes") or ()),
            views=views,
        )

    def lightning_entry(self) -> dict[str, Any]:
        """What ``BackboneModule.on_save_checkpoint`` stores under ``checkpoint["videoswinv2"]``."""
        return {"classes": list(self.classes), "views": dict(self.views) if self.views else None}

    @classmethod
    def from_file_entries(cls, entries: Mapping[str, Any] | None) -> ModelMetadata:
        """From what a file holds beside its tensors (``RawCheckpoint.metadata``): a Lightning
        checkpoint's entries, or a safetensors header's strings."""
        if not entries:
            return cls()
        if "hyper_parameters" in entries or LIGHTNING_KEY in entries:
            return cls.from_lightning(entries)
        if all(isinstance(value, str) for value in entries.values()):
            return cls.from_strings(entries)
        return cls()


def preprocessing_strings(views: Mapping[str, Any] | None) -> dict[str, str]:
    """What an exported model's input needs, as text: the layout, normalisation and clip spec."""
    from videoswinv2.data.transforms import VIDEO_SWIN_MEAN, VIDEO_SWIN_STD

    spec = {
        "layout": "(batch, 3 RGB, frames, height, width), float32",
        "normalization": "(pixel in 0..255 - mean) / std, per RGB channel",
        "mean": list(VIDEO_SWIN_MEAN),
        "std": list(VIDEO_SWIN_STD),
    }
    if views:
        spec |= {
            "num_frames": views["num_frames"],
            "frame_interval": views["frame_interval"],
            "target_fps": views.get("target_fps"),
            "resize_short_side": views["short_side"],
            "crop_size": views["crop_size"],
        }
    return {
        "preprocessing": json.dumps(spec),
        "output": "logits (batch, num_classes); softmax for probabilities",
    }


def read_strings(path: PathLike) -> dict[str, str]:
    """The metadata strings of a ``.safetensors`` file or an exported ``.onnx`` / ``.pt2`` model."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return {prop.key: prop.value for prop in model.metadata_props}
    if path.suffix == ".pt2":
        import torch

        extra = {PT2_EXTRA_FILE: ""}
        torch.export.load(str(path), extra_files=extra)
        return json.loads(extra[PT2_EXTRA_FILE] or "{}")
    raise CheckpointError(f"{path}: metadata strings are read from .safetensors, .onnx and .pt2 files only")
