"""``BackboneModule``: what every LightningModule around a videoswinv2 backbone shares: where the
backbone's weights come from, compiling it, the bias cache of evaluation loops, per-batch seeding
(exact resume) and skipping non-finite steps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from videoswinv2.checkpoints import load_pretrained
from videoswinv2.checkpoints.inflate import InflationError
from videoswinv2.checkpoints.io import CheckpointError
from videoswinv2.data.sampling import derive_seed
from videoswinv2.errors import UsageError
from videoswinv2.models.swin_transformer_v2_3d import SwinTransformerV2_3D
from videoswinv2.record import LIGHTNING_KEY, ModelRecord

from .evaluation import Result, ViewGatherer
from .nonfinite import NonFiniteSteps
from .optim import adamw_warmup_cosine


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

    def __init__(self) -> None:
        super().__init__()
        self._gatherer = ViewGatherer()  # see "views -> one Result" below

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

    # -- optimisation: AdamW over the subclass's parameter groups, warmup + cosine per step ------

    def optimizer_groups(self) -> list[dict[str, Any]]:
        """AdamW parameter groups (with their ``lr`` and ``weight_decay``)."""
        raise NotImplementedError

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        return adamw_warmup_cosine(
            self.trainer,
            self.optimizer_groups(),
            lr=hp.lr,
            betas=hp.betas,
            warmup_epochs=hp.warmup_epochs,
            min_lr_ratio=hp.min_lr_ratio,
        )

    # -- views -> one Result per video (or timeline window) ---------------------------------------
    # Test, multi-view validation and prediction batches come from a ViewStream: views of several
    # items, an item's views possibly spread over batches. The gatherer makes each item's Result
    # once all its views are in (videoswinv2.training.evaluation).

    # Set by videoswinv2.inference.FeatureWriter(feature_map=True): the maps are large, so the
    # results hold them only when a writer asks.
    predict_feature_map: bool = False

    def _view_outputs(self, clips: torch.Tensor, max_views: int | None = None) -> dict[str, torch.Tensor]:
        """Views ``(b, C, T, H, W)`` -> per-view ``features`` ``(b, C')`` pooled pre-logits,
        ``probs`` ``(b, K)`` softmax when the backbone has a classifier and, with
        ``predict_feature_map``, ``feature_map`` ``(b, C', T', H', W')``; float32 on the CPU,
        ``max_views`` views per model call."""
        outputs: list[dict[str, torch.Tensor]] = []
        for chunk in clips.split(max_views or len(clips)):
            maps = self.backbone.forward_features(chunk)
            pooled = self.backbone.forward_head(maps, pre_logits=True)
            out = {"features": pooled.float()}
            if self.backbone.num_classes > 0:
                out["probs"] = self.backbone.head(pooled).float().softmax(-1)
            if self.predict_feature_map:
                out["feature_map"] = maps.float()
            outputs.append(out)
        return {key: torch.cat([out[key] for out in outputs]).cpu() for key in outputs[0]}

    def _stream_results(self, batch: dict[str, Any], max_views: int | None = None) -> list[Result]:
        """The results a ``ViewStream`` batch completes (finished items, then failed videos)."""
        outputs = self._view_outputs(batch["video"], max_views) if len(batch["video"]) else {}
        return self._gatherer.batch_results(batch, outputs)

    def predict_step(
        self, batch: dict[str, Any], batch_idx: int = 0, dataloader_idx: int = 0
    ) -> dict[str, list]:
        """A ``ViewStream`` batch -> ``results``: the :class:`Result` of every item (video, or
        timeline window) whose last view it holds, and of every video that failed; ``finished``:
        the stream's tasks that ended with it. The writers of ``videoswinv2.inference`` write them."""
        return {"results": self._stream_results(batch), "finished": batch["finished"]}

    # The weights hold still through an evaluation or prediction loop, so each block's position
    # bias + mask is added once per loop instead of once per forward (~9% of a CPU bf16 forward).

    def _start_evaluation(self) -> None:
        self.backbone.cache_attention_bias(True)
        self._gatherer.reset()  # items of a loop cut short by limit_*_batches

    def _end_evaluation(self) -> None:
        self.backbone.cache_attention_bias(False)

    on_validation_start = on_test_start = on_predict_start = _start_evaluation
    on_validation_end = on_test_end = on_predict_end = _end_evaluation

    # -- steps that must not reach the weights ---------------------------------------------------
    # bf16 has no GradScaler to skip a step whose gradients overflowed, so the module does: after
    # backward, before Lightning clips the gradients (gradient_clip_val) and steps, a step whose
    # loss or unclipped gradient norm is not finite on any rank drops its gradients, so AdamW
    # changes no weight and no moment, and the schedule does not advance. NonFiniteSteps (added by
    # configure_callbacks) counts and names these steps and stops a run of them.
    # Every random draw of a step (mixup, masks, drop path, dropout) comes from the global
    # generators, seeded per batch: a run resumed mid-epoch draws what an uninterrupted one does.

    skipped_step: tuple[float, float] | None = None  # (loss, gradient norm) of a skipped step

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.skipped_step = None
        # Checkpoints hold no generator state. PL_GLOBAL_SEED is the seed of seed_everything.
        base = int(os.environ.get("PL_GLOBAL_SEED", 0))
        torch.manual_seed(derive_seed(base, self.current_epoch, batch_idx, self.global_rank))

    def on_before_backward(self, loss: torch.Tensor) -> None:
        self._loss = loss.detach()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        norm = torch.nn.utils.get_total_norm([p.grad for p in self.parameters() if p.grad is not None])
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)
        finite = bool(torch.isfinite(norm) & torch.isfinite(self._loss))
        if self.trainer.strategy.reduce_boolean_decision(not finite, all=False):
            self.skipped_step = (float(self._loss), float(norm))
            optimizer.zero_grad(set_to_none=True)  # optimizers step only parameters with gradients

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if self.skipped_step is None:
            super().lr_scheduler_step(scheduler, metric)

    def configure_callbacks(self) -> list[L.Callback]:
        return self._unless_configured(NonFiniteSteps())

    def _unless_configured(self, callback: L.Callback) -> list[L.Callback]:
        """``[callback]``, or ``[]`` when the trainer has one of its type: a callback returned by
        ``configure_callbacks`` replaces the trainer's of its type, which may be set up otherwise
        (``NonFiniteSteps(max_bad_steps=...)``)."""
        return [] if any(type(c) is type(callback) for c in self.trainer.callbacks) else [callback]

    # -- what `videoswinv2 predict` needs from a checkpoint -------------------------------------------
    # The model is rebuilt from the hyper-parameters (which hold the resolved windows); the class
    # names and evaluation views live in the data module, so they are saved beside them.

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        views = getattr(datamodule, "test_views", None)
        metadata = ModelRecord(
            classes=tuple(getattr(datamodule, "classes", None) or ()), views=asdict(views) if views else None
        )
        checkpoint[LIGHTNING_KEY] = metadata.lightning_entry()

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
        try:
            load_pretrained(self.backbone, hp.pretrained, temporal_init=hp.temporal_init, adopt_windows=adopt)
        except InflationError as error:
            raise UsageError(f"the pretrained checkpoint {hp.pretrained}: {error.summary}") from error
        except CheckpointError as error:  # one line already
            raise UsageError(f"the pretrained checkpoint {hp.pretrained}: {error}") from error
        self._use_pretrained_window_sizes(self.backbone.pretrained_window_sizes)
        self._weights_loaded = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The windows the weights were trained with, whatever the config rebuilding the model says.
        windows = ModelRecord.from_lightning(checkpoint).pretrained_window_sizes
        if windows is not None:
            self._use_pretrained_window_sizes(windows)
        self._weights_loaded = True

    def _use_pretrained_window_sizes(self, windows: Sequence[Any]) -> None:
        """Set the backbone's windows and record them in the hyper-parameters, which every
        checkpoint saves, so that ``load_from_checkpoint`` rebuilds the same model."""
        self.backbone.set_pretrained_window_sizes(windows)
        resolved = [list(w) for w in self.backbone.pretrained_window_sizes]
        self.hparams.model_kwargs = {**(self.hparams.model_kwargs or {}), "pretrained_window_sizes": resolved}
