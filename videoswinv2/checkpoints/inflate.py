"""Turning a canonical SwinV2 checkpoint into the 3D model's state dict, and loading it.

A 3D checkpoint of this package is copied 1:1; a 2D one is inflated, everything copied 1:1 but
the patch kernel (:func:`inflate_patch_embed`: a static clip then embeds exactly as its frame
does in 2D) and the CPB input layer (:func:`inflate_cpb_weight`). The classifier is copied only
when the class counts match, an absent ``extra_norm`` keeps its fresh initialisation (the report
says both), and any other missing, unexpected or mis-shaped key is an error naming the keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from videoswinv2.errors import UsageError
from videoswinv2.record import ARCHITECTURE_FIELDS, closest_variant

from .architecture import WindowSize, infer_architecture
from .checkpoint import Checkpoint, read_checkpoint
from .io import CheckpointError, PathLike

_logger = logging.getLogger(__name__)

TemporalInit = Literal["average", "center"]
TEMPORAL_INITS: tuple[str, ...] = ("average", "center")

_EXTRA_NORM = re.compile(r"^layers\.\d+\.blocks\.\d+\.extra_norm\.(weight|bias)$")
_MAX_LISTED = 10  # keys listed per section of an error before "... and N more"


class InflationError(UsageError):
    """The checkpoint does not fit the 3D model; the message names every offending key and
    ``summary`` says the same in one line, without the lists of keys."""

    def __init__(self, message: str, summary: str | None = None) -> None:
        super().__init__(message)
        self.summary = summary or message.splitlines()[0]


@dataclass
class InflationReport:
    """What happened to every tensor: model keys copied / inflated / re-initialised (with how
    or why), and checkpoint keys dropped (with why). ``temporal_init`` is None for a 3D source."""

    source: str
    layout: str
    temporal_init: str | None
    copied: list[str] = field(default_factory=list)
    inflated: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    reinitialised: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.temporal_init is None:
            title = f"loaded {self.source} ({self.layout} layout, 3D)"
        else:
            title = f"inflated {self.source} ({self.layout} layout) to 3D with temporal init '{self.temporal_init}'"
        lines = [title, f"  copied: {len(self.copied)} tensors"]
        for title, entries in (
            ("inflated", self.inflated),
            ("dropped from the checkpoint", self.dropped),
            ("re-initialised in the model", self.reinitialised),
        ):
            lines.append(f"  {title}: {len(entries)} tensors")
            lines += [f"    {line}" for line in _grouped(entries)]
        return "\n".join(lines)


def inflate_patch_embed(
    weight: Tensor, temporal_size: int, temporal_init: TemporalInit = "average"
) -> Tensor:
    """2D patch kernel ``(C, in, ph, pw)`` -> 3D ``(C, in, pt, ph, pw)`` with ``pt = temporal_size``:
    ``average`` repeats it over the pt frames divided by pt, ``center`` puts it on frame pt // 2."""
    if temporal_init == "average":
        return weight.unsqueeze(2).repeat(1, 1, temporal_size, 1, 1) / temporal_size
    if temporal_init == "center":
        inflated = weight.new_zeros(weight.shape[:2] + (temporal_size,) + weight.shape[2:])
        inflated[:, :, temporal_size // 2] = weight
        return inflated
    raise ValueError(f"temporal_init must be one of {TEMPORAL_INITS}, got {temporal_init!r}")


def inflate_cpb_weight(weight: Tensor) -> Tensor:
    """CPB first-layer weight ``(hidden, 2)`` over (h, w) -> ``(hidden, 3)`` over (t, h, w), t zero:
    the position bias starts independent of the temporal offset."""
    return torch.cat([weight.new_zeros(weight.shape[0], 1), weight], dim=1)


def inflate_state_dict(
    ckpt: Checkpoint,
    target_state_dict: Mapping[str, Tensor],
    *,
    temporal_init: TemporalInit = "average",
) -> tuple[dict[str, Tensor], InflationReport]:
    """A full 3D state dict from ``ckpt`` (2D: inflated; 3D: as is) with exactly the keys of
    ``target_state_dict``, which gives the shapes, dtypes and re-initialised values (copied
    tensors may share memory with the checkpoint's). Raises :class:`InflationError`."""
    if temporal_init not in TEMPORAL_INITS:
        raise ValueError(f"temporal_init must be one of {TEMPORAL_INITS}, got {temporal_init!r}")
    source = ckpt.state_dict
    report = InflationReport(
        ckpt.source, ckpt.layout, None if ckpt.is_3d else temporal_init, dropped=dict(ckpt.dropped)
    )
    head_reason = _head_reinit_reason(source, target_state_dict)
    inflated: dict[str, Tensor] = {}
    missing: list[str] = []
    mismatched: list[str] = []
    for key, target in target_state_dict.items():
        reason = head_reason if key.startswith("head.") else None
        if reason is None and key not in source and _EXTRA_NORM.match(key):
            reason = "extra post-norm (extra_norm_period > 0), absent from the checkpoint"
        if reason is not None:
            inflated[key] = target.detach().clone()
            report.reinitialised[key] = reason
            continue
        if key not in source:
            missing.append(key)
            continue
        converted = _convert(key, source[key].to(dtype=target.dtype), target, temporal_init)
        if converted is None:
            mismatched.append(key)
            continue
        tensor, how = converted
        inflated[key] = tensor
        if how:
            report.inflated[key] = how
        else:
            report.copied.append(key)

    unexpected = []
    for key in source:
        if key in target_state_dict:
            continue
        if key.startswith("head.") and "head.fc.weight" not in target_state_dict:
            report.dropped[key] = "the model has no classifier (num_classes=0)"
        else:
            unexpected.append(key)
    if missing or unexpected or mismatched:
        raise InflationError(*_error_message(ckpt, target_state_dict, missing, unexpected, mismatched))
    return inflated, report


def load_pretrained(
    model: nn.Module,
    path_or_ckpt: PathLike | Checkpoint,
    *,
    temporal_init: TemporalInit = "average",
    adopt_windows: bool = False,
) -> InflationReport:
    """Load any SwinV2 checkpoint (path or :class:`Checkpoint`) into ``model``, strictly (see
    :func:`inflate_state_dict`); the report is logged at INFO and returned. With
    ``adopt_windows`` the model takes the pretrained window sizes the checkpoint shows; otherwise
    windows that differ from them log a warning."""
    ckpt = path_or_ckpt if isinstance(path_or_ckpt, Checkpoint) else read_checkpoint(path_or_ckpt)
    shown = ckpt.pretrained_window_sizes
    # With another number of stages, the strict load below reports the real mismatch.
    if adopt_windows and shown is not None and len(shown) == len(model.pretrained_window_sizes):
        model.set_pretrained_window_sizes(shown)
        _logger.info("pretrained window sizes %s taken from %s", shown, ckpt.source)
    else:
        _warn_on_window_mismatch(model, ckpt)
    state_dict, report = inflate_state_dict(ckpt, model.state_dict(), temporal_init=temporal_init)
    model.load_state_dict(state_dict, strict=True)
    _logger.info("%s", report)
    return report


def _convert(
    key: str, tensor: Tensor, target: Tensor, temporal_init: TemporalInit
) -> tuple[Tensor, str] | None:
    """The checkpoint tensor in the target's shape and a note on how (empty: copied), or None."""
    shape, target_shape = tuple(tensor.shape), tuple(target.shape)
    if shape == target_shape:
        return tensor, ""
    if (
        key == "patch_embed.proj.weight"
        and target.dim() == 5
        and shape == target_shape[:2] + target_shape[3:]
    ):
        frames = target_shape[2]
        how = f"{shape} -> {target_shape}, {temporal_init} over {frames} frames"
        return inflate_patch_embed(tensor, frames, temporal_init), how
    if key.endswith("attn.cpb_mlp.0.weight") and target_shape == (shape[0], 3) and shape[1:] == (2,):
        return inflate_cpb_weight(tensor), f"{shape} -> {target_shape}, zero column for t prepended"
    return None


def _head_reinit_reason(source: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> str | None:
    """Why the model's classifier keeps its initialisation, or None if it is loaded (or checked) as usual."""
    model_head, ckpt_head = target.get("head.fc.weight"), source.get("head.fc.weight")
    if model_head is None:
        return None
    if ckpt_head is None:
        return "the checkpoint has no classifier"
    if ckpt_head.shape[0] != model_head.shape[0] and ckpt_head.shape[1:] == model_head.shape[1:]:
        return f"class count differs: checkpoint {ckpt_head.shape[0]}, model {model_head.shape[0]}"
    return None


def _warn_on_window_mismatch(model: nn.Module, ckpt: Checkpoint) -> None:
    """Warn when the model's CPB normalisation differs from the one the checkpoint was trained with."""
    model_windows = getattr(model, "pretrained_window_sizes", None)
    model_window = getattr(model, "window_size", None)
    if ckpt.pretrained_window_sizes is None or model_windows is None or model_window is None:
        return
    if ckpt.is_3d:  # both are 3D models' settings: compare them as given
        used, trained = tuple(model_windows), tuple(_triple(w) for w in ckpt.pretrained_window_sizes)
    else:
        # A model stage without a pretrained window normalises by its own (spatial) window.
        used = tuple(tuple(p or w for p, w in zip(m[1:], model_window[1:])) for m in model_windows)
        trained = tuple(_spatial(w) for w in ckpt.pretrained_window_sizes)
    if used != trained:
        _logger.warning(
            "the model normalises position-bias coordinates by spatial windows %s per stage, but %s was "
            "trained with %s: pass pretrained_window_sizes=%s unless that is intended",
            used,
            ckpt.source,
            trained,
            ckpt.pretrained_window_sizes,
        )


def _spatial(window: WindowSize) -> tuple[int, int]:
    return (window, window) if isinstance(window, int) else (window[1], window[2])


def _triple(window: WindowSize) -> tuple[int, int, int]:
    return (0, window, window) if isinstance(window, int) else tuple(window)


def _error_message(
    ckpt: Checkpoint,
    target: Mapping[str, Tensor],
    missing: list[str],
    unexpected: list[str],
    mismatched: list[str],
) -> tuple[str, str]:
    """The error's message (statements, then the offending keys) and its one-line summary."""
    verb = "load" if ckpt.is_3d else "inflate"
    statements = [f"cannot {verb} {ckpt.source} ({ckpt.layout} layout) into this model"]
    try:
        model_arch = infer_architecture(target)
    except CheckpointError:  # a target that is not a SwinV2 state dict: the key lists say enough
        model_arch = None
    if model_arch is not None:
        statements += [f"checkpoint: {ckpt.describe()}", f"model:      {model_arch.describe()}"]
        if model_arch.describe() != ckpt.describe():
            name, overrides = closest_variant(**{key: getattr(ckpt, key) for key in ARCHITECTURE_FIELDS})
            call = ", ".join([repr(name), *(f"{key}={value}" for key, value in overrides.items())])
            statements.append(f"-> the checkpoint fits create_model({call})")
    lines = [f"{statements[0]}:", *(f"  {statement}" for statement in statements[1:])]
    for title, keys in (
        ("missing from the checkpoint", missing),
        ("in the checkpoint, not in the model", unexpected),
    ):
        if keys:
            lines.append(f"  {title} ({len(keys)}):")
            lines += [f"    {line}" for line in _first_of(keys)]
    if mismatched:
        lines.append(f"  shape mismatches ({len(mismatched)}):")
        details = [_mismatch(k, ckpt.state_dict[k], target[k]) for k in mismatched]
        lines += [f"    {line}" for line in _first_of(details)]
    return "\n".join(lines), "; ".join(" ".join(statement.split()) for statement in statements)


def _mismatch(key: str, tensor: Tensor, target: Tensor) -> str:
    """``key: checkpoint (..), model (..); dim d: a vs b (what that dimension is)``."""
    shape, target_shape = tuple(tensor.shape), tuple(target.shape)
    text = f"{key}: checkpoint {shape}, model {target_shape}"
    if key == "patch_embed.proj.weight" and len(shape) == 4 and len(target_shape) == 5:
        target_shape = target_shape[:2] + target_shape[3:]  # the temporal axis is inflated, not compared
    if len(shape) != len(target_shape):
        return f"{text}; different number of dimensions"
    diffs = []
    for dim, (a, b) in enumerate(zip(shape, target_shape)):
        if a != b:
            meaning = _dim_meaning(key, dim)
            diffs.append(f"dim {dim}: {a} vs {b}" + (f" ({meaning})" if meaning else ""))
    return f"{text}; " + "; ".join(diffs)


def _dim_meaning(key: str, dim: int) -> str:
    """What a dimension says where it is not just the stage width."""
    if key == "patch_embed.proj.weight":
        return ("embed_dim", "input channels")[dim] if dim < 2 else "patch size"
    if key.endswith(("attn.logit_scale", "attn.cpb_mlp.2.weight")) and dim == 0:
        return "number of heads"
    if (key.endswith("mlp.fc1.weight") and dim == 0) or (key.endswith("mlp.fc2.weight") and dim == 1):
        return "MLP hidden width: mlp_ratio"
    if key == "head.fc.weight" and dim == 1:
        return "feature width"
    return ""


def _first_of(lines: list[str]) -> list[str]:
    if len(lines) <= _MAX_LISTED:
        return lines
    return lines[:_MAX_LISTED] + [f"... and {len(lines) - _MAX_LISTED} more"]


def _grouped(entries: Mapping[str, str]) -> Iterable[str]:
    """One line per (key pattern, note): stage and block indices become ``*``, with a count."""
    groups: dict[tuple[str, str], list[str]] = {}
    for key, note in entries.items():
        groups.setdefault((re.sub(r"(?<=layers\.)\d+|(?<=blocks\.)\d+", "*", key), note), []).append(key)
    for (pattern, note), keys in groups.items():
        name = keys[0] if len(keys) == 1 else f"{pattern} ({len(keys)})"
        yield f"{name}: {note}"
