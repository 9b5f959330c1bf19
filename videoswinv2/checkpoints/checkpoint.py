"""A SwinV2 checkpoint of any layout in the canonical layout, with what its tensors say about it."""

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
    pretrained_windows_from_metadata,
    pretrained_windows_from_tables,
)
from .io import CheckpointError, PathLike, read_raw_checkpoint
from .layouts import to_canonical

__all__ = ["Checkpoint", "read_checkpoint", "read_2d_checkpoint"]


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Architecture):
    """A 2D SwinV2 checkpoint (to inflate) or a 3D videoswinv2 one: its architecture and its
    canonical (timm-named) state dict. ``pretrained_window_sizes`` (per stage, as the 3D model
    takes them) are the windows its position bias was trained with where it shows them, else
    None; ``dropped`` maps each source key left out of ``state_dict`` to the reason."""

    state_dict: dict[str, Tensor] = field(repr=False)
    layout: str
    pretrained_window_sizes: tuple[WindowSize, ...] | None
    dropped: dict[str, str] = field(repr=False)
    source: str

    @property
    def is_3d(self) -> bool:
        """Whether the tensors are already the 3D model's (else they are inflated)."""
        return len(self.patch_size) == 3

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, Tensor],
        *,
        hf_config: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: str = "state dict",
    ) -> Checkpoint:
        """Canonicalise an in-memory state dict of any layout (``hf_config``: its Hugging Face
        config dict; ``metadata``: what the file holds beside the tensors)."""
        try:
            canonical = to_canonical(state_dict)
            arch = infer_architecture(canonical.state_dict)
        except CheckpointError as err:
            raise CheckpointError(f"{source}: {err}") from None
        num_stages = len(arch.depths)
        windows = pretrained_windows_from_tables(canonical.buffers, num_stages)
        if windows is None:
            windows = pretrained_windows_from_hf_config(hf_config, num_stages)
        if windows is None:
            windows = pretrained_windows_from_metadata(metadata, num_stages)
        return cls(
            **asdict(arch),
            state_dict=canonical.state_dict,
            layout=canonical.layout,
            pretrained_window_sizes=windows,
            dropped=canonical.dropped,
            source=source,
        )


def read_checkpoint(path: PathLike) -> Checkpoint:
    """Read a SwinV2 checkpoint of any format and layout (see :mod:`.io`, :mod:`.layouts`): 2D, or
    3D of this package (state dict, ``videoswinv2 inflate`` output, Lightning checkpoint)."""
    raw = read_raw_checkpoint(path)
    return Checkpoint.from_state_dict(
        raw.tensors, hf_config=raw.config, metadata=raw.metadata, source=raw.source
    )


def read_2d_checkpoint(path: PathLike) -> Checkpoint:
    """:func:`read_checkpoint` for a file that must be 2D (what ``videoswinv2 inflate`` takes)."""
    ckpt = read_checkpoint(path)
    if ckpt.is_3d:
        raise CheckpointError(
            f"{ckpt.source} is already a 3D state dict (patch_embed.proj.weight has shape "
            f"{tuple(ckpt.state_dict['patch_embed.proj.weight'].shape)}): load it with "
            "model.load_state_dict or pretrained=, instead of inflating it"
        )
    return ckpt
