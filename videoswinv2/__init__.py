"""videoswinv2: a 3D Swin Transformer V2 for video action recognition."""

from .models import SwinTransformerV2_3D, create_model, list_models

__version__ = "0.1.0"
__all__ = ["SwinTransformerV2_3D", "create_model", "list_models", "__version__"]
