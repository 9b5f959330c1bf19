from videoswinv2.record import VARIANTS, list_models

from .factory import create_model
from .swin_transformer_v2_3d import SwinTransformerV2_3D, SwinV2Block3D, WindowAttention3D

__all__ = [
    "VARIANTS",
    "SwinTransformerV2_3D",
    "SwinV2Block3D",
    "WindowAttention3D",
    "create_model",
    "list_models",
]
