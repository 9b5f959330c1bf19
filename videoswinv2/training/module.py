"""``VideoClassifier``: the LightningModule, a thin layer of training logic over the plain backbone."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics import MeanMetric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from videoswinv2.distributed import gather_lists
from videoswinv2.models import create_model

from .backbone import BackboneModule
from .evaluation import (
    VideoPrediction,
    average_view_probabilities,
    mean_class_accuracy,
    save_accuracy_figures,
    top_predictions,
    write_predictions_csv,
)
from .mixing import mix_clips
from .optim import adamw_warmup_cosine, learning_rates, param_groups

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "videoswinv2"  # where a Lightning checkpoint keeps what `videoswinv2 predict` needs


def _accuracies(num_classes: int, prefix: str) -> MetricCollection:
    """``top1`` (and ``top5`` beyond 5 classes): correct videos / videos, the figure papers report.
    torchmetrics' default, ``average="macro"``, would be a per-class mean instead."""
    metrics = {"top1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes > 5:
        metrics["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


class VideoClassifier(BackboneModule):
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
        self.train_metrics = _accuracies(num_classes, "train/")
        self.val_metrics = _accuracies(num_classes, "val/")
        self.test_metrics = _accuracies(num_classes, "test/")
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
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
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        groups = param_groups(
            self.backbone, lr=hp.lr, weight_decay=hp.weight_decay, backbone_lr_mult=hp.backbone_lr_mult
        )
        return adamw_warmup_cosine(
            self.trainer,
            groups,
            lr=hp.lr,
            betas=hp.betas,
            warmup_epochs=hp.warmup_epochs,
            min_lr_ratio=hp.min_lr_ratio,
        )

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

    # Validation and prediction loops cache the attention bias (BackboneModule); so do tests.

    def on_test_start(self) -> None:
        self.backbone.cache_attention_bias(True)
        if self.trainer.ckpt_path is None and self.global_step == 0 and not self._weights_loaded:
            rank_zero_warn(
                "testing a model that was neither trained nor loaded from a checkpoint: its classifier is "
                "random, so the scores mean nothing. Pass --ckpt_path RUN/checkpoints/last.ckpt"
            )

    def on_test_end(self) -> None:
        self.backbone.cache_attention_bias(False)

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

    # -- what `videoswinv2 predict` needs from a checkpoint -------------------------------------------
    # The model is rebuilt from the hyper-parameters (which hold the resolved windows); only the
    # class names live in the data module, so they are saved beside them.

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        checkpoint[CHECKPOINT_KEY] = {"classes": list(getattr(datamodule, "classes", []) or [])}
