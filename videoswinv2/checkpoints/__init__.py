"""Reading SwinV2 checkpoints of any layout (``read_checkpoint`` -> :class:`Checkpoint`) and
turning them into the 3D model's weights (``inflate_state_dict``, pure over state dicts;
``load_pretrained``, what ``create_model(..., pretrained=...)`` uses)."""

from .architecture import Architecture, WindowSize, infer_architecture
from .checkpoint import Checkpoint, read_2d_checkpoint, read_checkpoint
from .inflate import (
    TEMPORAL_INITS,
    InflationError,
    InflationReport,
    TemporalInit,
    inflate_cpb_weight,
    inflate_patch_embed,
    inflate_state_dict,
    load_pretrained,
)
from .io import CheckpointError, read_raw_checkpoint, save_state_dict
from .layouts import LAYOUTS, detect_layout, to_canonical, unfold_to_concat_order

__all__ = [
    "LAYOUTS",
    "TEMPORAL_INITS",
    "Architecture",
    "Checkpoint",
    "CheckpointError",
    "InflationError",
    "InflationReport",
    "TemporalInit",
    "WindowSize",
    "detect_layout",
    "infer_architecture",
    "inflate_cpb_weight",
    "inflate_patch_embed",
    "inflate_state_dict",
    "load_pretrained",
    "read_2d_checkpoint",
    "read_checkpoint",
    "read_raw_checkpoint",
    "save_state_dict",
    "to_canonical",
    "unfold_to_concat_order",
]
