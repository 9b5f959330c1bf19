"""What a model is, in one leaf module that imports no torch: the variants, the input's
normalisation, the evaluation views, and :class:`ModelRecord` (variant and settings, classes,
views, where its weights came from), which every artefact is written from and read back into: a
Lightning checkpoint's entries, or the strings of a safetensors header, ONNX ``metadata_props`` or
a ``.pt2``'s ``videoswinv2.json``. :mod:`videoswinv2.checkpoints.records` opens the files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from typing import Any

from videoswinv2.errors import CheckpointError, UsageError

# -- variants --------------------------------------------------------------------------------------

# Widths, depths and heads of SwinV2 T/S/B/L; the 3D window and patch are Video Swin's.
VARIANTS: dict[str, dict[str, Any]] = {
    "videoswinv2_tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "videoswinv2_small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "videoswinv2_base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "videoswinv2_large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}
# What a state dict's shapes fix about a variant (checkpoints.Architecture reads them off).
ARCHITECTURE_FIELDS = ("embed_dim", "depths", "num_heads", "mlp_ratio")


def list_models() -> list[str]:
    return sorted(VARIANTS)


def variant_differences(
    name: str, overrides: Mapping[str, Any] | None = None, **architecture: Any
) -> dict[str, Any]:
    """The settings of ``architecture`` (any of :data:`ARCHITECTURE_FIELDS`) that variant ``name``
    with ``overrides`` does not have."""
    unknown = set(architecture) - set(ARCHITECTURE_FIELDS)
    if unknown:
        raise ValueError(f"not architecture settings: {sorted(unknown)}")
    config = {"mlp_ratio": 4.0, **VARIANTS[name], **(overrides or {})}
    return {key: value for key, value in architecture.items() if not _same(config[key], value)}


def closest_variant(**architecture: Any) -> tuple[str, dict[str, Any]]:
    """The named variant that differs from ``architecture`` in the fewest settings, and the
    overrides that make it match: ``("videoswinv2_tiny", {})`` for SwinV2-T's shapes. Ties go to
    the smaller variant."""
    name = min(VARIANTS, key=lambda n: len(variant_differences(n, **architecture)))
    return name, variant_differences(name, **architecture)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return tuple(a) == tuple(b)
    return float(a) == float(b)


# -- input -----------------------------------------------------------------------------------------

# Video Swin (mmaction2) normalisation of RGB pixels on the 0..255 scale.
INPUT_MEAN = (123.675, 116.28, 103.53)
INPUT_STD = (58.395, 57.12, 57.375)


def kinetics400_classes() -> list[str]:
    """The 400 Kinetics-400 class names in their standard (alphabetical) order."""
    text = resources.files("videoswinv2").joinpath("kinetics400_classes.txt").read_text()
    return text.splitlines()


# -- evaluation views ------------------------------------------------------------------------------

CROPS_PER_CLIP = 3

# Data module argument -> EvalViews field: the test split's view settings.
DATAMODULE_VIEW_ARGUMENTS = {
    "num_test_clips": "num_clips",
    "num_frames": "num_frames",
    "frame_interval": "frame_interval",
    "target_fps": "target_fps",
    "test_short_side": "short_side",
    "test_crop_size": "crop_size",
    "decoder": "decoder",
    "frame_sampling": "sampling",
    "short_video": "short_video",
    "test_clip_placement": "clip_placement",
    "test_view_reduction": "reduction",
}
VIEW_REDUCTIONS = ("mean", "max")


@dataclass(frozen=True)
class EvalViews:
    """How a video is seen at evaluation time: ``num_clips`` clips of ``num_frames`` frames (see
    :class:`~videoswinv2.data.clip_planning.ClipSpec`) placed as ``clip_placement`` says, short side
    resized to ``short_side``, three ``crop_size`` crops each: ``3 * num_clips`` views, whose
    probabilities make the video's by their ``reduction`` (``mean`` or ``max``, PySlowFast's for
    Charades). Its defaults are the data module's test defaults; :mod:`videoswinv2.data.views`
    reads by it."""

    num_clips: int = 4
    num_frames: int = 32
    frame_interval: int = 2
    target_fps: float | None = None
    short_side: int = 224
    crop_size: int = 224
    decoder: str = "pyav"
    sampling: str = "interval"
    short_video: str = "repeat_last"
    clip_placement: str = "uniform"
    reduction: str = "mean"

    def __post_init__(self) -> None:
        if self.reduction not in VIEW_REDUCTIONS:
            raise UsageError(f"the view reduction must be one of {VIEW_REDUCTIONS}, got {self.reduction!r}")
        for name in ("num_clips", "num_frames", "frame_interval", "short_side", "crop_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.crop_size > self.short_side:
            raise UsageError(f"crop_size {self.crop_size} is larger than short_side {self.short_side}")

    @property
    def num_views(self) -> int:
        return CROPS_PER_CLIP * self.num_clips

    @classmethod
    def from_datamodule(cls, hparams: Mapping[str, Any]) -> EvalViews:
        """The test views of the data module's hyper-parameters (its own, or those a Lightning
        checkpoint saved); settings not given take the defaults."""
        given = {ours: hparams[key] for key, ours in DATAMODULE_VIEW_ARGUMENTS.items() if key in hparams}
        return cls(**given)

    def overridden(self, **changes: Any) -> EvalViews:
        """A copy with the fields in ``changes`` that are not None replaced."""
        known = {f.name for f in fields(self)}
        return EvalViews(
            **{**asdict(self), **{k: v for k, v in changes.items() if v is not None and k in known}}
        )


# -- the record of one model -----------------------------------------------------------------------

LIGHTNING_KEY = "videoswinv2"  # a Lightning checkpoint's entry for what the hyper-parameters lack
PRETRAINING_KEY = "videoswinv2_pretraining"  # marks a checkpoint of MaskedVideoPretraining (no classifier)
PT2_EXTRA_FILE = "videoswinv2.json"  # the extra file of an exported .pt2 holding the strings
_JSON_KEYS = ("model_kwargs", "pretrained_window_sizes", "classes", "views")


@dataclass(frozen=True)
class ModelRecord:
    """The package's record of a model. ``model_kwargs`` includes ``pretrained_window_sizes``
    when known; ``views`` maps :class:`EvalViews` field names to values (None: unknown);
    ``source`` and ``temporal_init`` say which 2D checkpoint an inflated model came from;
    ``pretraining`` marks a masked-pretraining model (no classifier); ``multi_label``, a
    classifier of independent sigmoids (several classes per video), absent in older files."""

    model: str | None = None
    num_classes: int | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    views: Mapping[str, Any] | None = None
    source: str | None = None
    temporal_init: str | None = None
    pretraining: bool = False
    multi_label: bool = False

    @property
    def pretrained_window_sizes(self) -> Any:
        return self.model_kwargs.get("pretrained_window_sizes")

    @property
    def eval_views(self) -> EvalViews:
        """The recorded views, or the defaults where none are recorded."""
        return EvalViews(**self.views) if self.views else EvalViews()

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
            multi_label="true" if self.multi_label else None,  # absent: single-label, as before
        )
        return {
            key: json.dumps(value) if key in _JSON_KEYS else str(value)
            for key, value in values.items()
            if value is not None or key == "pretrained_window_sizes"
        }

    @classmethod
    def from_strings(cls, strings: Mapping[str, str], source: str = "the file's metadata") -> ModelRecord:
        """The inverse of :meth:`to_strings`; keys it does not know are ignored."""
        parsed: dict[str, Any] = {}
        for key in [key for key in _JSON_KEYS if key in strings]:
            try:
                parsed[key] = json.loads(strings[key])
            except ValueError:
                raise CheckpointError(f"{source}: {key} is not valid JSON: {strings[key][:80]!r}") from None
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
            multi_label=strings.get("multi_label", "false").lower() == "true",
        )

    # -- Lightning checkpoints -------------------------------------------------------------------

    @classmethod
    def from_lightning(cls, checkpoint: Mapping[str, Any]) -> ModelRecord:
        """From a Lightning checkpoint dict (or the entries beside its ``state_dict``)."""
        hparams = checkpoint.get("hyper_parameters") or {}
        entry = checkpoint.get(LIGHTNING_KEY) or {}
        views = entry.get("views")
        if views is None and "datamodule_hyper_parameters" in checkpoint:
            views = asdict(EvalViews.from_datamodule(checkpoint["datamodule_hyper_parameters"] or {}))
        return cls(
            model=hparams.get("model"),
            num_classes=hparams.get("num_classes"),
            model_kwargs=dict(hparams.get("model_kwargs") or {}),
            classes=tuple(entry.get("classes") or ()),
            views=views,
            pretraining=PRETRAINING_KEY in checkpoint,
            multi_label=bool(hparams.get("multi_label", False)),
        )

    def lightning_entry(self) -> dict[str, Any]:
        """What a LightningModule's checkpoint stores under ``checkpoint["videoswinv2"]``."""
        return {"classes": list(self.classes), "views": dict(self.views) if self.views else None}

    @classmethod
    def from_file_entries(cls, entries: Mapping[str, Any] | None) -> ModelRecord:
        """From what a file holds beside its tensors: a Lightning checkpoint's entries, or a
        safetensors header's strings."""
        if not entries:
            return cls()
        if "hyper_parameters" in entries or LIGHTNING_KEY in entries:
            return cls.from_lightning(entries)
        if all(isinstance(value, str) for value in entries.values()):
            return cls.from_strings(entries)
        return cls()


def preprocessing_strings(views: Mapping[str, Any] | None, multi_label: bool = False) -> dict[str, str]:
    """What an exported model's input needs, as text: the layout, normalisation and clip spec."""
    spec = {
        "layout": "(batch, 3 RGB, frames, height, width), float32",
        "normalization": "(pixel in 0..255 - mean) / std, per RGB channel",
        "mean": list(INPUT_MEAN),
        "std": list(INPUT_STD),
    }
    if views:
        spec |= {
            "num_frames": views["num_frames"],
            "frame_interval": views["frame_interval"],
            "target_fps": views.get("target_fps"),
            "resize_short_side": views["short_side"],
            "crop_size": views["crop_size"],
        }
    output = (
        "probabilities (batch, num_classes): independent sigmoids"
        if multi_label
        else "logits (batch, num_classes); softmax for probabilities"
    )
    return {"preprocessing": json.dumps(spec), "output": output}
