"""Named variants and ``create_model``, in the manner of timm's model registry."""

from __future__ import annotations

from os import PathLike
from typing import Any, Literal

from .swin_transformer_v2_3d import SwinTransformerV2_3D

# Widths, depths and heads of SwinV2 T/S/B/L; the 3D window and patch are Video Swin's.
MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "videoswinv2_tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "videoswinv2_small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "videoswinv2_base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "videoswinv2_large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}


# What a state dict's shapes fix about a variant (checkpoints.Architecture reads them off).
ARCHITECTURE_FIELDS = ("embed_dim", "depths", "num_heads", "mlp_ratio")


def list_models() -> list[str]:
    return sorted(MODEL_CONFIGS)


def variant_differences(
    name: str, overrides: dict[str, Any] | None = None, **architecture: Any
) -> dict[str, Any]:
    """The settings of ``architecture`` (any of :data:`ARCHITECTURE_FIELDS`) that variant ``name``
    with ``overrides`` does not have."""
    unknown = set(architecture) - set(ARCHITECTURE_FIELDS)
    if unknown:
        raise ValueError(f"not architecture settings: {sorted(unknown)}")
    config = {"mlp_ratio": 4.0, **MODEL_CONFIGS[name], **(overrides or {})}
    return {key: value for key, value in architecture.items() if not _same(config[key], value)}


def closest_variant(**architecture: Any) -> tuple[str, dict[str, Any]]:
    """The named variant that differs from ``architecture`` in the fewest settings, and the
    overrides that make it match: ``("videoswinv2_tiny", {})`` for SwinV2-T's shapes. Ties go to
    the smaller variant."""
    name = min(MODEL_CONFIGS, key=lambda n: len(variant_differences(n, **architecture)))
    return name, variant_differences(name, **architecture)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return tuple(a) == tuple(b)
    return float(a) == float(b)


def create_model(
    name: str,
    *,
    num_classes: int = 400,
    pretrained: str | PathLike | None = None,
    temporal_init: Literal["average", "center"] = "average",
    **overrides: Any,
) -> SwinTransformerV2_3D:
    """Build a named variant; ``overrides`` use the constructor's argument names.

    ``pretrained`` loads any SwinV2 checkpoint (see ``videoswinv2.checkpoints.load_pretrained``):
    a 2D one of any supported layout is inflated (``temporal_init``), a 3D one of this package
    (state dict, ``videoswinv2 inflate`` output, Lightning checkpoint) is loaded as is; a
    classifier with another class count is re-initialised. When ``pretrained_window_sizes`` is
    not given, the windows the checkpoint shows it was trained with are used.
    """
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    model = SwinTransformerV2_3D(**{**MODEL_CONFIGS[name], "num_classes": num_classes, **overrides})
    if pretrained is not None:
        from videoswinv2.checkpoints import load_pretrained

        adopt = overrides.get("pretrained_window_sizes") is None
        load_pretrained(model, pretrained, temporal_init=temporal_init, adopt_windows=adopt)
    return model
