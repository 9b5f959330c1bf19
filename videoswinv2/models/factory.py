"""Named variants and ``create_model``, in the manner of timm's model registry."""

from __future__ import annotations

import logging
from os import PathLike
from typing import Any, Literal

from .swin_transformer_v2_3d import SwinTransformerV2_3D

log = logging.getLogger(__name__)

# Widths, depths and heads of SwinV2 T/S/B/L; the 3D window and patch are Video Swin's.
MODEL_CONFIGS: dict[str, dict[str, Any]] = {
    "videoswinv2_tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "videoswinv2_small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "videoswinv2_base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "videoswinv2_large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}


def list_models() -> list[str]:
    return sorted(MODEL_CONFIGS)


def create_model(
    name: str,
    *,
    num_classes: int = 400,
    pretrained_2d: str | PathLike | None = None,
    temporal_init: Literal["average", "center"] = "average",
    **overrides: Any,
) -> SwinTransformerV2_3D:
    """Build a named variant; ``overrides`` use the constructor's argument names.

    With ``pretrained_2d``, a 2D SwinV2 checkpoint (official, timm or Hugging Face layout) is
    inflated into the model. When ``pretrained_window_sizes`` is not given, the windows the
    checkpoint shows it was trained with are used.
    """
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    kwargs = {**MODEL_CONFIGS[name], "num_classes": num_classes, **overrides}
    if pretrained_2d is None:
        return SwinTransformerV2_3D(**kwargs)

    from videoswinv2.checkpoints import load_pretrained_2d, read_2d_checkpoint

    ckpt = read_2d_checkpoint(pretrained_2d)
    if "pretrained_window_sizes" not in kwargs and ckpt.pretrained_window_sizes is not None:
        kwargs["pretrained_window_sizes"] = ckpt.pretrained_window_sizes
        log.info("pretrained window sizes %s taken from %s", ckpt.pretrained_window_sizes, pretrained_2d)
    model = SwinTransformerV2_3D(**kwargs)
    load_pretrained_2d(model, ckpt, temporal_init=temporal_init)
    return model
