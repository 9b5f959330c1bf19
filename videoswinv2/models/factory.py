"""``create_model``: a named variant (:data:`videoswinv2.record.VARIANTS`), in the manner of timm's
builders; the model hands its weights to the checkpoint loader, never the reverse."""

from __future__ import annotations

from os import PathLike
from typing import Any, Literal

from videoswinv2.checkpoints import load_pretrained
from videoswinv2.record import VARIANTS, list_models

from .swin_transformer_v2_3d import SwinTransformerV2_3D


def create_model(
    name: str,
    *,
    num_classes: int = 400,
    pretrained: str | PathLike | None = None,
    temporal_init: Literal["average", "center"] = "average",
    **overrides: Any,
) -> SwinTransformerV2_3D:
    """Build a named variant; ``overrides`` use the constructor's argument names. ``pretrained``
    loads any SwinV2 checkpoint (``videoswinv2.checkpoints.load_pretrained``: 2D inflated with
    ``temporal_init``, 3D as is), and the windows it shows unless ``pretrained_window_sizes`` is
    given."""
    if name not in VARIANTS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    model = SwinTransformerV2_3D(**{**VARIANTS[name], "num_classes": num_classes, **overrides})
    if pretrained is not None:
        adopt = overrides.get("pretrained_window_sizes") is None
        load_pretrained(model, pretrained, temporal_init=temporal_init, adopt_windows=adopt)
    return model
