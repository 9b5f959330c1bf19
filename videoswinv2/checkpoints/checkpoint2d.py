"""A 2D SwinV2 checkpoint in the canonical layout, with what its tensors say about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor

from .architecture import (
    Architecture,
    WindowSize,
    infer_architecture,
    pretrained_windows_from_hf_config,
    pretrained_windows_from_tables,
)
from .io import CheckpointError, PathLike, read_raw_checkpoint
from .layouts import to_canonical

__all__ = ["Checkpoint2D", "read_2d_checkpoint"]


@dataclass(frozen=True, kw_only=True)
class Checkpoint2D(Architecture):
    """A 2D SwinV2 checkpoint: its architecture, plus the canonical (timm-named) state dict.

    ``pretrained_window_sizes`` (one per stage, as the 3D model takes them) are the windows
    the checkpoint's position bias was trained with, where the checkpoint shows them, else None.
    ``dropped`` maps each source key left out of ``state_dict`` (buffers, pretraining-only
    tensors) to the reason.
    """

    state_dict: dict[str, Tensor] = field(repr=False)
    layout: str
    pretrained_window_sizes: tuple[WindowSize, ...] | None
    dropped: dict[str, str] = field(repr=False)
    source: str

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, Tensor],
        *,
        hf_config: Mapping[str, Any] | None = None,
        source: str = "state dict",
    ) -> Checkpoint2D:
        """Canonicalise an in-memory 2D state dict of any layout (``hf_config``: its HF config dict)."""
        try:
            canonical = to_canonical(state_dict)
            arch = infer_architecture(canonical.state_dict)
        except CheckpointError as err:
            raise CheckpointError(f"{source}: {err}") from None
        if len(arch.patch_size) != 2:
            raise CheckpointError(
                f"{source} is already a 3D state dict (patch_embed.proj.weight has shape "
                f"{tuple(canonical.state_dict['patch_embed.proj.weight'].shape)}): load it with "
                "model.load_state_dict instead of inflating it"
            )
        num_stages = len(arch.depths)
        windows = pretrained_windows_from_tables(canonical.buffers, num_stages)
        if windows is None:
            windows = pretrained_windows_from_hf_config(hf_config, num_stages)
        return cls(
            **asdict(arch),
            state_dict=canonical.state_dict,
            layout=canonical.layout,
            pretrained_window_sizes=windows,
            dropped=canonical.dropped,
            source=source,
        )


def read_2d_checkpoint(path: PathLike) -> Checkpoint2D:
    """Read a 2D SwinV2 checkpoint of any layout and format (see :mod:`.io`, :mod:`.layouts`)."""
    raw = read_raw_checkpoint(path)
    return Checkpoint2D.from_state_dict(raw.tensors, hf_config=raw.config, source=raw.source)
