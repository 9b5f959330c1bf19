from .factory import MODEL_CONFIGS, create_model, list_models
from .swin_transformer_v2_3d import SwinTransformerV2_3D, SwinV2Block3D, WindowAttention3D

__all__ = [
    "MODEL_CONFIGS",
    "SwinTransformerV2_3D",
    "SwinV2Block3D",
    "WindowAttention3D",
    "create_model",
    "list_models",
]
