"""``BackboneModule``: what every LightningModule around a videoswinv2 backbone shares: where the
backbone's weights come from, compiling it, and the bias cache of evaluation loops."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn

from videoswinv2.checkpoints import load_pretrained
from videoswinv2.models.swin_transformer_v2_3d import SwinTransformerV2_3D


class BackboneModule(L.LightningModule):
    """Base of ``VideoClassifier`` and ``MaskedVideoPretraining``. Subclasses build ``self.backbone``
    and save hyper-parameters holding ``model_kwargs``, ``pretrained``, ``temporal_init`` and
    ``compile``.

    ``pretrained`` is read once, when a fit starts from scratch: never when the module is rebuilt
    from its own checkpoint (``load_from_checkpoint``, ``ckpt_path``). The windows the weights were
    trained with are written into the hyper-parameters, so every checkpoint rebuilds the same model.
    """

    backbone: SwinTransformerV2_3D
    # True once the backbone holds weights to keep: `pretrained` loaded, or a checkpoint restored.
    _weights_loaded: bool = False
    _compiled: bool = False

    def configure_model(self) -> None:
        # Here rather than in the constructor, so that building or loading a model never compiles.
        # Stage by stage, so that every entry point (forward, and forward_features, which
        # predict_step calls) runs compiled.
        if self.hparams.compile and not self._compiled:
            for part in (self.backbone.patch_embed, *self.backbone.layers):
                part.compile(fullgraph=True)
            self._compiled = True

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.trainer.strategy.restore_checkpoint_after_setup:
            self._load_pretrained()
        self._warn_about_input_size(stage)

    def _warn_about_input_size(self, stage: str) -> None:
        # Warned here, where the clip size is first known (the data module holds it).
        data = getattr(self.trainer, "datamodule", None)
        h = getattr(data, "hparams", {})
        split = {"fit": "train", "validate": "val", "test": "test"}.get(stage)
        if split is None or "num_frames" not in h or f"{split}_crop_size" not in h:
            return
        crop = h[f"{split}_crop_size"]
        for problem in self.backbone.input_size_problems((h["num_frames"], crop, crop)):
            rank_zero_warn(problem)

    # The weights hold still through an evaluation or prediction loop, so each block's position
    # bias + mask is added once per loop instead of once per forward (~9% of a CPU bf16 forward).

    def on_validation_start(self) -> None:
        self.backbone.cache_attention_bias(True)

    def on_validation_end(self) -> None:
        self.backbone.cache_attention_bias(False)

    def on_predict_start(self) -> None:
        self.backbone.cache_attention_bias(True)

    def on_predict_end(self) -> None:
        self.backbone.cache_attention_bias(False)

    # -- where the weights come from -------------------------------------------------------------
    # Lightning restores a `ckpt_path` after `setup` and, for most strategies, before
    # `on_fit_start`; strategies that shard the model (FSDP, DeepSpeed) wrap it after `setup` and
    # restore only after `on_fit_start`, so for them the weights are loaded before the wrapping
    # (and a resumed fit reads `pretrained` too, then restores over it).

    def on_fit_start(self) -> None:
        if not self.trainer.strategy.restore_checkpoint_after_setup:
            self._load_pretrained()

    def _load_pretrained(self) -> None:
        hp = self.hparams
        if hp.pretrained is None or self._weights_loaded:
            return
        adopt = (hp.model_kwargs or {}).get("pretrained_window_sizes") is None
        load_pretrained(self.backbone, hp.pretrained, temporal_init=hp.temporal_init, adopt_windows=adopt)
        self._use_pretrained_window_sizes(self.backbone.pretrained_window_sizes)
        self._weights_loaded = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The windows the weights were trained with, whatever the config rebuilding the model says.
        kwargs = checkpoint.get("hyper_parameters", {}).get("model_kwargs") or {}
        if kwargs.get("pretrained_window_sizes") is not None:
            self._use_pretrained_window_sizes(kwargs["pretrained_window_sizes"])
        self._weights_loaded = True

    def _use_pretrained_window_sizes(self, windows: Sequence[Any]) -> None:
        """Set the backbone's windows and record them in the hyper-parameters, which every
        checkpoint saves, so that ``load_from_checkpoint`` rebuilds the same model."""
        self.backbone.set_pretrained_window_sizes(windows)
        resolved = [list(w) for w in self.backbone.pretrained_window_sizes]
        self.hparams.model_kwargs = {**(self.hparams.model_kwargs or {}), "pretrained_window_sizes": resolved}
