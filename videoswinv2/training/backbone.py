"""``BackboneModule``: the Lightning hooks every module around a videoswinv2 backbone shares, each
handing its work to the part that does it."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from videoswinv2.data.geometry import ClipGeometry
from videoswinv2.data.sampling import derive_seed
from videoswinv2.models.swin_transformer_v2_3d import SwinTransformerV2_3D
from videoswinv2.record import LIGHTNING_KEY, ModelRecord

from .evaluation import ViewEvaluator
from .nonfinite import NonFiniteGuard
from .optim import adamw_warmup_cosine
from .weights import PretrainedWeights

# The split whose clips a stage runs on.
_STAGE_SPLITS = {"fit": "train", "validate": "val", "test": "test"}


def seed_training_step(epoch: int, batch_idx: int, rank: int) -> None:
    """Seed the global generators per training step (PL_GLOBAL_SEED is seed_everything's): every
    random draw of a step (mixup, masks, drop path, dropout) comes from them, so a run resumed
    mid-epoch draws what an uninterrupted one does (checkpoints hold no generator state)."""
    torch.manual_seed(derive_seed(int(os.environ.get("PL_GLOBAL_SEED", 0)), epoch, batch_idx, rank))


class BackboneModule(L.LightningModule):
    """Base of ``VideoClassifier`` and ``MaskedVideoPretraining``, which save their hyper-parameters
    and hand their backbone to :meth:`_compose`. Its parts: ``evaluator`` (evaluation over views),
    ``pretrained_weights``, ``step_guard`` (non-finite steps) and ``clip_geometry`` (the data's
    clips, checked against the backbone when a run starts)."""

    backbone: SwinTransformerV2_3D

    def _compose(self, backbone: SwinTransformerV2_3D, clip_geometry: ClipGeometry | None) -> None:
        self.backbone = backbone
        self.clip_geometry = clip_geometry
        self.evaluator = ViewEvaluator(backbone, multi_label=self.hparams.get("multi_label", False))
        self.pretrained_weights = PretrainedWeights(backbone, self.hparams)
        self.step_guard = NonFiniteGuard()
        self._compiled = False

    def configure_model(self) -> None:
        # Not in the constructor: building or loading a model never compiles. Stage by stage, so
        # that forward and forward_features (predict_step's) both run compiled.
        if self.hparams.compile and not self._compiled:
            for part in (self.backbone.patch_embed, *self.backbone.layers):
                part.compile(fullgraph=True)
            self._compiled = True

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.trainer.strategy.restore_checkpoint_after_setup:
            self.pretrained_weights.load()
        size = self.clip_size(_STAGE_SPLITS.get(stage))
        for problem in self.backbone.input_size_problems(size) if size else ():
            rank_zero_warn(problem)

    def clip_size(self, split: str | None) -> tuple[int, int, int] | None:
        """``(T, H, W)`` of the data's clips of ``split``, when the module was given them."""
        return self.clip_geometry.clip_size(split) if self.clip_geometry and split else None

    # Lightning restores a `ckpt_path` after `setup` and, for most strategies, before
    # `on_fit_start`; strategies that shard the model (FSDP, DeepSpeed) wrap it after `setup` and
    # restore only after `on_fit_start`, so for them the weights are loaded before the wrapping
    # (and a resumed fit reads `pretrained` too, then restores over it).

    def on_fit_start(self) -> None:
        if not self.trainer.strategy.restore_checkpoint_after_setup:
            self.pretrained_weights.load()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.pretrained_weights.restored(checkpoint)

    # The model is rebuilt from the hyper-parameters (windows resolved); the class names and
    # evaluation views, which `videoswinv2 predict` needs too, are the data module's: saved beside.

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        views = getattr(datamodule, "test_views", None)
        classes = tuple(getattr(datamodule, "classes", None) or ())
        record = ModelRecord(classes=classes, views=asdict(views) if views else None)
        checkpoint[LIGHTNING_KEY] = record.lightning_entry()

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

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.step_guard.start()
        seed_training_step(self.current_epoch, batch_idx, self.global_rank)

    def on_before_backward(self, loss: torch.Tensor) -> None:
        self.step_guard.note_loss(loss)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        norm = self.step_guard.check(self, optimizer)
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if self.step_guard.skipped is None:
            super().lr_scheduler_step(scheduler, metric)

    def predict_step(
        self, batch: dict[str, Any], batch_idx: int = 0, dataloader_idx: int = 0
    ) -> dict[str, list]:
        """A ``ViewStream`` batch -> ``results``: the :class:`Result` of every item it completes and
        every video that failed; ``finished``: the stream's tasks that ended with it."""
        return {"results": self.evaluator.results(batch), "finished": batch["finished"]}

    def _start_evaluation(self) -> None:
        self.evaluator.start()

    def _end_evaluation(self) -> None:
        self.evaluator.end()

    on_validation_start = on_test_start = on_predict_start = _start_evaluation
    on_validation_end = on_test_end = on_predict_end = _end_evaluation
