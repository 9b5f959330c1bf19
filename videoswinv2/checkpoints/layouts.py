"""Layouts of 2D SwinV2 state dicts, and renaming them into the canonical one: timm's (>= 0.9)
``SwinTransformerV2``, which the 3D model shares key for key (``layers.{i}.downsample.*`` at the
START of stage i >= 1, ``head.fc.*``). The other layouts hold the same tensors under other names:

- ``official`` (microsoft/Swin-Transformer, timm < 0.9): the downsample at the END of a stage,
  ``head.*``, and the buffers stored; ``simmim``: the same under ``encoder.``, plus ``decoder.*``.
- ``hf`` (transformers, under ``swinv2.`` with a classifier): separate query/key/value linears (no
  key bias), ``layernorm_before``/``_after`` (after attention / MLP despite the names), the
  downsample at the END of a stage.
- ``mmpretrain`` (``{'meta', 'state_dict'}``): ``backbone.stages.{i}`` with the downsample at the
  START, ``attn.w_msa.*``, ``ffn.layers.*``, the final norm as ``backbone.norm{last stage}``. Its
  patch merging's ``nn.Unfold`` orders the reduction's input columns ``c*4 + dh*2 + dw``: they
  are permuted into SwinV2's concatenation order (:func:`unfold_to_concat_order`).
- ``videoswinv2``: a 3D state dict of this package, plain or under ``backbone.`` (Lightning).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .io import CheckpointError

LAYOUTS = ("official", "simmim", "timm", "hf", "mmpretrain", "videoswinv2")
# Derived from the window size alone; the 3D model recomputes them for its own windows.
BUFFER_NAMES = ("relative_coords_table", "relative_position_index", "attn_mask")
_BUFFER_REASON = "buffer, recomputed by the model"

# The continuous position bias MLP is what makes a Swin a SwinV2.
_CPB_SUFFIXES = ("attn.cpb_mlp.0.weight", "w_msa.cpb_mlp.0.weight", "continuous_position_bias_mlp.0.weight")


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
    if any(k.startswith("backbone.stages.") for k in keys):
        return "mmpretrain"
    patch = state_dict.get("patch_embed.proj.weight", state_dict.get("backbone.patch_embed.proj.weight"))
    if patch is not None and patch.dim() == 5:
        return "videoswinv2"
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
    rename = _mmpretrain_renamer(state_dict) if layout == "mmpretrain" else _RENAMES[layout]
    weights: dict[str, Tensor] = {}
    buffers: dict[str, Tensor] = {}
    dropped: dict[str, str] = {}
    for key, tensor in state_dict.items():
        reason = _pretraining_only(key)
        if reason:
            dropped[key] = reason
            continue
        name = rename(key)
        if name is None:
            dropped[key] = (
                "norm of an intermediate stage output (mmpretrain out_indices), unused by a classifier"
            )
            continue
        if name.rsplit(".", 1)[-1] in BUFFER_NAMES:
            buffers[name] = tensor
            dropped[key] = _BUFFER_REASON
        else:
            weights[name] = tensor
    if layout == "hf":
        weights = _merge_qkv(weights)
    if layout == "mmpretrain":
        weights = {k: unfold_to_concat_order(v) if _is_reduction(k) else v for k, v in weights.items()}
    return CanonicalStateDict(layout, weights, buffers, dropped)


def unfold_to_concat_order(weight: Tensor) -> Tensor:
    """Patch-merging reduction ``(O, 4C)`` with ``nn.Unfold`` columns ``c*4 + dh*2 + dw`` -> SwinV2's
    concatenation columns ``k*C + c`` with k = x0..x3 = (dh, dw) (0,0), (1,0), (0,1), (1,1), i.e.
    ``k = dw*2 + dh``."""
    out_features, in_features = weight.shape
    return weight.view(out_features, in_features // 4, 2, 2).permute(0, 3, 2, 1).reshape(out_features, -1)


def _is_reduction(key: str) -> bool:
    return re.fullmatch(r"layers\.\d+\.downsample\.reduction\.weight", key) is not None


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
        f"(cpb_mlp / continuous_position_bias_mlp); first keys: {shown}. Only SwinV2 checkpoints can be "
        "loaded (2D ones are inflated)."
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


_MMPRETRAIN_RULES: tuple[tuple[str, str], ...] = (
    (r"^backbone\.patch_embed\.projection\.", "patch_embed.proj."),
    (r"^backbone\.patch_embed\.", "patch_embed."),
    (r"^backbone\.stages\.", "layers."),
    (r"\.attn\.w_msa\.", ".attn."),
    (r"\.ffn\.layers\.0\.0\.", ".mlp.fc1."),
    (r"\.ffn\.layers\.1\.", ".mlp.fc2."),
    (r"(\.blocks\.\d+)\.norm3\.", r"\1.extra_norm."),
)


def _mmpretrain_renamer(state_dict: Mapping[str, Tensor]) -> Callable[[str], str | None]:
    """mmpretrain's names -> canonical ones. ``backbone.norm{i}`` normalises stage i's output
    (``out_indices``); that of the last stage is the classifier's final norm, the others have no
    place in a classifier (None)."""
    stages = {int(m[1]) for k in state_dict if (m := re.match(r"backbone\.stages\.(\d+)\.", k))}
    last = max(stages)

    def rename(key: str) -> str | None:
        final_norm = re.match(r"^backbone\.norm(\d+)\.", key)
        if final_norm:
            return None if int(final_norm[1]) != last else "norm." + key[final_norm.end() :]
        for pattern, replacement in _MMPRETRAIN_RULES:
            key = re.sub(pattern, replacement, key)
        return key

    return rename


_RENAMES: dict[str, Callable[[str], str]] = {
    "official": _official_to_canonical,
    "simmim": _simmim_to_canonical,
    "timm": lambda key: key,
    "hf": _hf_to_canonical,
    "videoswinv2": lambda key: key.removeprefix("backbone."),
}
