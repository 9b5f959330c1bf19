"""``PretrainedWeights``: where a module's backbone weights come from, and the windows they were
trained with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.fabric.utilities.data import AttributeDict

from videoswinv2.checkpoints import load_pretrained
from videoswinv2.checkpoints.inflate import InflationError
from videoswinv2.checkpoints.io import CheckpointError
from videoswinv2.errors import UsageError
from videoswinv2.models.swin_transformer_v2_3d import SwinTransformerV2_3D
from videoswinv2.record import ModelRecord


class PretrainedWeights:
    """Reads the module's ``pretrained`` into the backbone when a fit starts from scratch, never
    from its own checkpoint. The weights' windows go into the hyper-parameters' ``model_kwargs``,
    so every checkpoint rebuilds the same model."""

    def __init__(self, backbone: SwinTransformerV2_3D, hparams: AttributeDict) -> None:
        self.backbone, self.hparams = backbone, hparams
        # True once the backbone holds weights to keep: `pretrained` loaded, or a checkpoint restored.
        self.loaded = False

    def load(self) -> None:
        hp = self.hparams
        if hp.pretrained is None or self.loaded:
            return
        adopt = (hp.model_kwargs or {}).get("pretrained_window_sizes") is None
        try:
            load_pretrained(self.backbone, hp.pretrained, temporal_init=hp.temporal_init, adopt_windows=adopt)
        except InflationError as error:
            raise UsageError(f"the pretrained checkpoint {hp.pretrained}: {error.summary}") from error
        except CheckpointError as error:  # one line already
            raise UsageError(f"the pretrained checkpoint {hp.pretrained}: {error}") from error
        self._use_windows(self.backbone.pretrained_window_sizes)
        self.loaded = True

    def restored(self, checkpoint: dict[str, Any]) -> None:
        """The module's checkpoint was restored: its windows, whatever the rebuilding config says."""
        windows = ModelRecord.from_lightning(checkpoint).pretrained_window_sizes
        if windows is not None:
            self._use_windows(windows)
        self.loaded = True

    def _use_windows(self, windows: Sequence[Any]) -> None:
        self.backbone.set_pretrained_window_sizes(windows)
        resolved = [list(w) for w in self.backbone.pretrained_window_sizes]
        self.hparams.model_kwargs = {**(self.hparams.model_kwargs or {}), "pretrained_window_sizes": resolved}
