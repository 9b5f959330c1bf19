"""``VideoClassifier``: the LightningModule, a thin layer of training logic over the plain backbone."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics import MeanMetric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from videoswinv2.checkpoints import load_pretrained
from videoswinv2.data.sampling import derive_seed
from videoswinv2.distributed import gather_lists
from videoswinv2.models import create_model

from .evaluation import (
    VideoPrediction,
    average_view_probabilities,
    mean_class_accuracy,
    save_accuracy_figures,
    top_predictions,
    write_predictions_csv,
)
from .mixing import mix_clips
from .nonfinite import NonFiniteSteps
from .optim import learning_rates, param_groups, warmup_cosine

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "videoswinv2"  # where a Lightning checkpoint keeps what `videoswinv2 predict` needs


def _accuracies(num_classes: int, prefix: str) -> MetricCollection:
    """``top1`` (and ``top5`` beyond 5 classes): correct videos / videos, the figure papers report.
    torchmetrics' default, ``average="macro"``, would be a per-class mean instead."""
    metrics = {"top1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes > 5:
        metrics["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


class VideoClassifier(L.LightningModule):
    """Video action recognition with a 3D SwinV2 backbone.

    Batches are dicts from ``videoswinv2.data``: ``video`` ``(B, C, T, H, W)`` (one clip per
    video) or ``(B, V, C, T, H, W)`` (V views per video, softmax-averaged), ``label``,
    ``index`` (broken videos are counted by the data module's ``BrokenVideoLogger``).

    Args:
        model: a name from ``videoswinv2.list_models()``.
        num_classes: classifier outputs.
        model_kwargs: constructor overrides (``window_size``, ``drop_path_rate``, ...).
        pretrained: weights to start training from, any checkpoint ``create_model(pretrained=)``
            takes (a 2D SwinV2 one is inflated; a 3D one, such as another run's Lightning
            checkpoint, is loaded as is; a classifier with another class count is
            re-initialised). Read once, when a fit starts from scratch: never when the model is
            rebuilt from its own checkpoint (``load_from_checkpoint``, ``ckpt_path``).
        temporal_init: how the 2D patch embedding is spread over time when inflating.
        lr: peak learning rate of the head (and of the backbone unless ``backbone_lr_mult``).
        backbone_lr_mult: backbone learning rate / head learning rate (0.1 for inflated weights).
        warmup_epochs: linear warmup length; the schedule is cosine, stepped every optimiser step.
        max_views_per_forward: views per model call in multi-view evaluation.
        compile: compile the backbone's patch embedding and stages with
            ``torch.compile(fullgraph=True)`` when a run starts (in place: checkpoints keep their
            keys). The first steps of each input shape and of training vs evaluation pay the
            compilation.
    """

    def __init__(
        self,
        model: str = "videoswinv2_tiny",
        num_classes: int = 400,
        model_kwargs: dict[str, Any] | None = None,
        pretrained: str | None = None,
        temporal_init: Literal["average", "center"] = "average",
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.999),
        backbone_lr_mult: float = 1.0,
        warmup_epochs: float = 2.5,
        min_lr_ratio: float = 0.0,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        max_views_per_forward: int = 6,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = create_model(model, num_classes=num_classes, **(model_kwargs or {}))
        # True once the backbone holds weights to keep: `pretrained` loaded, or a checkpoint restored.
        self._weights_loaded = False
        self._compiled = False
        self.train_metrics = _accuracies(num_classes, "train/")
        self.val_metrics = _accuracies(num_classes, "val/")
        self.test_metrics = _accuracies(num_classes, "test/")
        # A skipped non-finite step is reported by NonFiniteSteps; the epoch's mean leaves it out.
        self.train_loss, self.val_loss = MeanMetric(nan_strategy="ignore"), MeanMetric()
        self.val_videos = SumMetric()  # summed over ranks: no rank may skip a collective alone
        self.val_confusion = MulticlassConfusionMatrix(num_classes)
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        self._predictions: list[VideoPrediction] = []

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.backbone(clips)

    # -- training -------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        clips, labels = batch["video"], batch["label"]
        hp = self.hparams
        clips, targets = mix_clips(
            clips,
            labels,
            num_classes=hp.num_classes,
            mixup_alpha=hp.mixup_alpha,
            cutmix_alpha=hp.cutmix_alpha,
            label_smoothing=hp.label_smoothing,
        )
        logits = self(clips)
        loss = F.cross_entropy(logits.float(), targets)
        self.train_loss(loss)
        self.train_metrics(logits, labels)
        self.log(
            "train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(labels)
        )
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=len(labels))
        self.log_dict(learning_rates(self.trainer.optimizers[0].param_groups), on_step=True, on_epoch=False)
        self._loss = loss.detach()
        return loss

    # -- steps that must not reach the weights ---------------------------------------------------
    # bf16 has no GradScaler to skip a step whose gradients overflowed, so the module does: after
    # backward, before Lightning clips the gradients (gradient_clip_val) and steps, a step whose
    # loss or unclipped gradient norm is not finite on any rank drops its gradients, so AdamW
    # changes no weight and no moment, and the schedule does not advance. NonFiniteSteps (added by
    # configure_callbacks) counts and names these steps and stops a run of them.

    skipped_step: tuple[float, float] | None = None  # (loss, gradient norm) of a skipped step

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.skipped_step = None
        # Mixup, drop path and dropout draw from the global generators. Seeded from the batch, a
        # run resumed mid-epoch draws what an uninterrupted one does (checkpoints hold no
        # generator state). PL_GLOBAL_SEED is the seed of seed_everything.
        base = int(os.environ.get("PL_GLOBAL_SEED", 0))
        torch.manual_seed(derive_seed(base, self.current_epoch, batch_idx, self.global_rank))

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
        if any(isinstance(c, NonFiniteSteps) for c in self.trainer.callbacks):
            return []
        return [NonFiniteSteps()]

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = param_groups(
            self.backbone, lr=hp.lr, weight_decay=hp.weight_decay, backbone_lr_mult=hp.backbone_lr_mult
        )
        optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
        total = self.trainer.estimated_stepping_batches
        warmup = round(hp.warmup_epochs * total / max(self.trainer.max_epochs or 1, 1))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: warmup_cosine(
                step, total_steps=total, warmup_steps=warmup, min_ratio=hp.min_lr_ratio
            ),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # -- evaluation -----------------------------------------------------------------------------

    def _video_probabilities(self, videos: torch.Tensor) -> torch.Tensor:
        """One clip ``(B, C, T, H, W)`` or V views ``(B, V, C, T, H, W)`` per video -> ``(B, K)``."""
        if videos.ndim == 5:
            videos = videos.unsqueeze(1)
        return average_view_probabilities(self, videos, self.hparams.max_views_per_forward)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if len(batch["label"]) == 0:
            return
        probs, labels = self._video_probabilities(batch["video"]), batch["label"]
        self.val_loss(F.nll_loss(probs.clamp(min=1e-12).log(), labels))
        self.val_metrics(probs, labels)
        self.val_confusion(probs, labels)
        self.val_videos(len(labels))

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if len(batch["label"]) == 0:
            return
        probs, labels = self._video_probabilities(batch["video"]), batch["label"]
        self.test_metrics(probs, labels)
        self.test_confusion(probs, labels)
        self._predictions += top_predictions(probs, labels, batch["index"], k=5)

    # Set by videoswinv2.inference.FeatureWriter(feature_map=True): the maps are large, so
    # predict_step returns them only when a writer asks.
    predict_feature_map: bool = False

    def predict_step(
        self, batch: dict[str, Any], batch_idx: int = 0, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Per-view outputs of a ``videoswinv2.inference`` batch of b views ``(b, C, T, H, W)``:
        ``probs`` ``(b, K)`` softmax, ``features`` ``(b, C')`` pooled pre-logits and, with
        ``predict_feature_map``, ``feature_map`` ``(b, C', T', H', W')``; float32. The writers
        average them per video."""
        clips = batch["video"]
        if len(clips) == 0:  # only videos that failed to decode since the last batch
            return {}
        maps = self.backbone.forward_features(clips)
        outputs = {
            "probs": self.backbone.forward_head(maps).float().softmax(-1),
            "features": self.backbone.forward_head(maps, pre_logits=True).float(),
        }
        if self.predict_feature_map:
            outputs["feature_map"] = maps.float()
        return outputs

    # Metrics are computed and logged at epoch end on every rank: under DDP each rank sees its own
    # number of videos (no padding duplicates), so nothing collective may depend on a rank's batches.

    def on_validation_epoch_end(self) -> None:
        if self.val_videos.compute() == 0:
            # Nothing was scored: 0.0 would rank as a real (worst or, first, best) result. NaN is
            # what ModelCheckpoint ranks below every real score, and what the curves show as a gap.
            if not self.trainer.sanity_checking:
                rank_zero_warn(
                    f"epoch {self.current_epoch}: no validation video could be decoded (see the broken "
                    "videos above), so val/top1 and val/loss are logged as NaN, below any real score"
                )
            keys = [*self.val_metrics.keys(keep_base=False), "val/mean_class_accuracy", "val/loss"]
            values = {key: math.nan for key in keys}
        else:
            values = {
                **self.val_metrics.compute(),
                "val/mean_class_accuracy": mean_class_accuracy(self.val_confusion.compute()),
                "val/loss": self.val_loss.compute(),
            }
        for metric in (self.val_metrics, self.val_confusion, self.val_loss, self.val_videos):
            metric.reset()
        self.log_dict(values, prog_bar=True)
        # TensorBoard shows hp_metric beside the hyper-parameters (it stays -1 unless logged).
        self.log("hp_metric", values["val/top1"])

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

    def on_test_start(self) -> None:
        self.backbone.cache_attention_bias(True)
        if self.trainer.ckpt_path is None and self.global_step == 0 and not self._weights_loaded:
            rank_zero_warn(
                "testing a model that was neither trained nor loaded from a checkpoint: its classifier is "
                "random, so the scores mean nothing. Pass --ckpt_path RUN/checkpoints/last.ckpt"
            )

    def on_test_end(self) -> None:
        self.backbone.cache_attention_bias(False)

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

    def on_test_epoch_end(self) -> None:
        confusion = self.test_confusion.compute()
        values = {**self.test_metrics.compute(), "test/mean_class_accuracy": mean_class_accuracy(confusion)}
        predictions = gather_lists(self._predictions)
        self.test_metrics.reset()
        self.test_confusion.reset()
        self._predictions = []
        self.log_dict(values)
        out_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)  # collective under DDP
        if not self.trainer.is_global_zero:
            return
        video_paths = [v.path for v in self.trainer.test_dataloaders.dataset.videos]
        classes = self.trainer.datamodule.classes
        write_predictions_csv(out_dir / "predictions.csv", predictions, video_paths, classes)
        figures = save_accuracy_figures(out_dir, confusion, classes)
        log.info(
            "test: %d videos; wrote %s",
            len(predictions),
            ", ".join(map(str, [out_dir / "predictions.csv", *figures])),
        )

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

    # -- what `videoswinv2 predict` needs from a checkpoint -------------------------------------------
    # The model is rebuilt from the hyper-parameters (which hold the resolved windows); only the
    # class names live in the data module, so they are saved beside them.

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        checkpoint[CHECKPOINT_KEY] = {"classes": list(getattr(datamodule, "classes", []) or [])}
