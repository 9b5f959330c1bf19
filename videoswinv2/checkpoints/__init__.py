"""Reading SwinV2 checkpoints of any layout and turning them into the 3D model's weights.

``read_checkpoint`` -> :class:`Checkpoint` (canonical timm-named state dict + inferred
architecture; 2D checkpoints of any supported layout, or 3D ones of this package),
``inflate_state_dict`` (pure, over state dicts: 2D inflated, 3D as is), ``load_pretrained`` (into
a model, strictly, with a report; what ``create_model(..., pretrained=...)`` and
``VideoClassifier(pretrained=...)`` use), and the ``videoswinv2 inflate`` command.
"""

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
