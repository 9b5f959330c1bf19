"""Reading 2D SwinV2 checkpoints of any layout and inflating them into the 3D model.

``read_2d_checkpoint`` -> :class:`Checkpoint2D` (canonical timm-named state dict + inferred
architecture), ``inflate_state_dict`` (pure, over state dicts), ``load_pretrained_2d`` (into a
model, strictly, with a report). The ``videoswinv2 inflate`` command is in ``videoswinv2.commands``.
"""

from .architecture import Architecture, WindowSize, infer_architecture
from .checkpoint2d import Checkpoint2D, read_2d_checkpoint
from .inflate import (
    TEMPORAL_INITS,
    InflationError,
    InflationReport,
    TemporalInit,
    inflate_cpb_weight,
    inflate_patch_embed,
    inflate_state_dict,
    load_pretrained_2d,
)
from .io import CheckpointError, read_raw_checkpoint, save_state_dict
from .layouts import LAYOUTS, detect_layout, to_canonical

__all__ = [
    "LAYOUTS",
    "TEMPORAL_INITS",
    "Architecture",
    "Checkpoint2D",
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
    "load_pretrained_2d",
    "read_2d_checkpoint",
    "read_raw_checkpoint",
    "save_state_dict",
    "to_canonical",
]
