"""Layouts of 2D SwinV2 state dicts, and renaming them into the canonical one.

The canonical layout is timm's (>= 0.9) ``SwinTransformerV2``, which the 3D model shares key for
key: ``patch_embed.*``, ``layers.{i}.downsample.*`` at the START of stage i >= 1,
``layers.{i}.blocks.{j}.{norm1, attn.{qkv, q_bias, v_bias, logit_scale, cpb_mlp, proj}, norm2, mlp}``,
``norm.*`` and ``head.fc.*``. The other layouts hold the same tensors (same shapes) under other
names:

- ``official`` (microsoft/Swin-Transformer, also timm < 0.9): ``layers.{i}.downsample`` at the END
  of stage i, classifier ``head.*``, and the buffers ``relative_coords_table``,
  ``relative_position_index`` and ``attn_mask`` stored with the weights.
- ``simmim``: the official layout under ``encoder.``, plus the pretraining-only ``encoder.mask_token``
  and ``decoder.*``.
- ``hf`` (transformers ``Swinv2Model`` / ``Swinv2ForImageClassification``, the latter under
  ``swinv2.``): separate query/key/value linears (no key bias), ``continuous_position_bias_mlp``,
  ``layernorm_before``/``layernorm_after`` (applied after attention / MLP despite the names),
  downsample at the END of a stage, ``layernorm`` and ``classifier``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .io import CheckpointError

__all__ = ["LAYOUTS", "BUFFER_NAMES", "CanonicalStateDict", "detect_layout", "to_canonical"]

LAYOUTS = ("official", "simmim", "timm", "hf")
# Derived from the window size alone; the 3D model recomputes them for its own windows.
BUFFER_NAMES = ("relative_coords_table", "relative_position_index", "attn_mask")
BUFFER_REASON = "buffer, recomputed by the model"

# The continuous position bias MLP is what makes a Swin a SwinV2.
_CPB_SUFFIXES = ("attn.cpb_mlp.0.weight", "continuous_position_bias_mlp.0.weight")


@dataclass(frozen=True)
class CanonicalStateDict:
    """A 2D state dict renamed into the canonical layout.

    ``buffers`` keeps the stored buffers (canonical names) because they show the windows the
    checkpoint was trained with; ``dropped`` maps every source key that is not carried over
    (buffers included) to the reason.
    """

    layout: str
    state_dict: dict[str, Tensor]
    buffers: dict[str, Tensor]
    dropped: dict[str, str]


def detect_layout(state_dict: Mapping[str, Tensor]) -> str:
    """One of :data:`LAYOUTS`, or a :class:`CheckpointError` saying what the state dict is instead."""
    keys = list(state_dict)
    if not any(k.endswith(_CPB_SUFFIXES) for k in keys):
        raise CheckpointError(_not_swinv2_message(keys))
    if any(".attention.self." in k for k in keys):
        return "hf"
    if any(k.startswith("encoder.layers.") for k in keys):
        return "simmim"
    # A headless single-stage checkpoint reads the same in both layouts, and is called timm.
    if "layers.0.downsample.reduction.weight" in state_dict or "head.weight" in state_dict:
        return "official"
    return "timm"


def to_canonical(state_dict: Mapping[str, Tensor]) -> CanonicalStateDict:
    """Rename a 2D SwinV2 state dict of any layout into the canonical one.

    Keys no rule knows keep their name, so that loading later names them as unexpected.
    """
    layout = detect_layout(state_dict)
    rename = _RENAMES[layout]
    weights: dict[str, Tensor] = {}
    buffers: dict[str, Tensor] = {}
    dropped: dict[str, str] = {}
    for key, tensor in state_dict.items():
        reason = _pretraining_only(key)
        if reason:
            dropped[key] = reason
            continue
        name = rename(key)
        if name.rsplit(".", 1)[-1] in BUFFER_NAMES:
            buffers[name] = tensor
            dropped[key] = BUFFER_REASON
        else:
            weights[name] = tensor
    if layout == "hf":
        weights = _merge_qkv(weights)
    return CanonicalStateDict(layout, weights, buffers, dropped)


def _not_swinv2_message(keys: list[str]) -> str:
    if any(k.endswith("relative_position_bias_table") for k in keys):
        what = (
            "a Swin Transformer V1 checkpoint (learned relative_position_bias_table instead of SwinV2's "
            "continuous position bias)"
        )
    elif any(".attn.meta_mlp." in k for k in keys):
        what = "timm's swinv2_cr, a different SwinV2 implementation whose layout is not supported"
    elif any(k.rsplit(".", 1)[-1] in ("cls_token", "pos_embed") for k in keys):
        what = "a ViT-style checkpoint (cls_token / pos_embed)"
    else:
        what = "not a SwinV2 checkpoint"
    shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
    return (
        f"{what}: none of its {len(keys)} tensors is a SwinV2 continuous-position-bias MLP "
        f"(cpb_mlp / continuous_position_bias_mlp); first keys: {shown}. Only 2D SwinV2 checkpoints can be inflated."
    )


def _pretraining_only(key: str) -> str | None:
    """Why a key of a masked-image-modeling checkpoint (SimMIM, HF) has no place in a classifier."""
    if key.rsplit(".", 1)[-1] == "mask_token":
        return "mask token of masked-image-modeling pretraining"
    if key.startswith("decoder."):
        return "decoder of masked-image-modeling pretraining"
    return None


def _next_stage_downsample(match: re.Match) -> str:
    """Downsample at the end of stage i -> ``layers.{i+1}.downsample.``, the start of stage i+1."""
    return f"layers.{int(match[1]) + 1}.downsample."


def _official_to_canonical(key: str) -> str:
    key = re.sub(r"^layers\.(\d+)\.downsample\.", _next_stage_downsample, key)
    return re.sub(r"^head\.(weight|bias)$", r"head.fc.\1", key)


def _simmim_to_canonical(key: str) -> str:
    return _official_to_canonical(key.removeprefix("encoder."))


# Applied in order; the later, generic attention rule must not see the specific ones' keys.
_HF_RULES: tuple[tuple[str, str | Callable[[re.Match], str]], ...] = (
    (r"^swinv2\.", ""),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^embeddings\.norm\.", "patch_embed.norm."),
    (r"^encoder\.layers\.(\d+)\.downsample\.", _next_stage_downsample),
    (r"^encoder\.layers\.", "layers."),
    (r"\.attention\.self\.continuous_position_bias_mlp\.", ".attn.cpb_mlp."),
    (r"\.attention\.self\.query\.bias$", ".attn.q_bias"),
    (r"\.attention\.self\.value\.bias$", ".attn.v_bias"),
    (r"\.attention\.self\.(query|key|value)\.weight$", r".attn.\1.weight"),  # merged by _merge_qkv
    (r"\.attention\.self\.", ".attn."),  # logit_scale and the buffers
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
    (r"^layernorm\.", "norm."),
    (r"^classifier\.", "head.fc."),
)


def _hf_to_canonical(key: str) -> str:
    for pattern, replacement in _HF_RULES:
        key = re.sub(pattern, replacement, key)
    return key


def _merge_qkv(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """HF's separate ``query``/``key``/``value`` weights -> one ``qkv.weight`` ``(3C, C)``, rows q, k, v."""
    merged: dict[str, Tensor] = {}
    for name, tensor in weights.items():
        prefix, _, leaf = name.rpartition(".attn.")
        parts = [f"{prefix}.attn.{p}.weight" for p in ("query", "key", "value")]
        if leaf not in ("query.weight", "key.weight", "value.weight") or not all(p in weights for p in parts):
            merged[name] = tensor
        elif leaf == "query.weight":
            merged[f"{prefix}.attn.qkv.weight"] = torch.cat([weights[p] for p in parts])
    return merged


_RENAMES: dict[str, Callable[[str], str]] = {
    "official": _official_to_canonical,
    "simmim": _simmim_to_canonical,
    "timm": lambda key: key,
    "hf": _hf_to_canonical,
}
