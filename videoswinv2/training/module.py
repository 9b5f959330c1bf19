"""``VideoClassifier``: the LightningModule, a thin layer of training logic over the plain backbone."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics import MeanMetric, MetricCollection, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from videoswinv2.data.datasets import multi_hot
from videoswinv2.data.geometry import ClipGeometry
from videoswinv2.models import create_model

from .backbone import BackboneModule
from .evaluation import AveragePrecisions, Result, mean_average_precision, mean_class_accuracy
from .mixing import mix_clips
from .optim import learning_rates, param_groups


def _accuracies(num_classes: int, prefix: str) -> MetricCollection:
    """``top1`` (and ``top5`` beyond 5 classes): correct videos / videos, the figure papers report.
    torchmetrics' default, ``average="macro"``, would be a per-class mean instead."""
    metrics = {"top1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes > 5:
        metrics["top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


class _SplitScores:
    """The scores of one split over an epoch: single-label, top-1 (top-5) accuracy and mean class
    accuracy; multi-label, mAP over the classes with a positive video (PySlowFast's Charades)."""

    def __init__(self, module: VideoClassifier, split: str, num_classes: int, multi_label: bool) -> None:
        self.split, self.multi_label = split, multi_label
        # Registered on the module (as `{split}_metrics`, ...) so that they follow its device.
        if multi_label:
            module.add_module(f"{split}_ap", AveragePrecisions())
            self.metrics: list[Any] = [getattr(module, f"{split}_ap")]
        else:
            module.add_module(f"{split}_metrics", _accuracies(num_classes, f"{split}/"))
            module.add_module(f"{split}_confusion", MulticlassConfusionMatrix(num_classes))
            self.metrics = [getattr(module, f"{split}_metrics"), getattr(module, f"{split}_confusion")]

    def names(self) -> list[str]:
        if self.multi_label:
            return [f"{self.split}/mAP"]
        return [*self.metrics[0].keys(keep_base=False), f"{self.split}/mean_class_accuracy"]

    def update(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        for metric in self.metrics:
            metric.update(probs, labels)

    def compute_and_reset(self) -> dict[str, Any]:
        if self.multi_label:
            values = {f"{self.split}/mAP": mean_average_precision(self.metrics[0].compute())}
        else:
            accuracy, confusion = self.metrics
            values = {
                **accuracy.compute(),
                f"{self.split}/mean_class_accuracy": mean_class_accuracy(confusion.compute()),
            }
        for metric in self.metrics:
            metric.reset()
        return values


class VideoClassifier(BackboneModule):
    """Video action recognition with a 3D SwinV2 backbone; the defaults are Video Swin's
    Kinetics-400 recipe for the tiny model (ImageNet-1K weights).

    Batches are dicts from ``videoswinv2.data``: ``video`` ``(B, C, T, H, W)``, ``label`` and
    ``index`` in training and single-clip validation; otherwise ``ViewStream`` batches of views,
    gathered into one :class:`~videoswinv2.training.evaluation.Result` per video (or timeline
    window), which test and predict steps return for callbacks (``TestReport``, the writers of
    ``videoswinv2.inference``) to write.

    Args:
        model: a name from ``videoswinv2.list_models()``.
        num_classes: classifier outputs; None: 400 (Kinetics-400). The command line sets it to the
            data module's class count (a value given there must agree).
        multi_label: several classes per video: binary cross-entropy on each class's logit,
            sigmoid probabilities, mAP as the score (``val/mAP`` monitored). The command line sets
            it from the data's annotation format.
        model_kwargs: backbone arguments (``window_size``, ``patch_size``, ...) over the variant's;
            a ``drop_rate`` or ``drop_path_rate`` here (older checkpoints) wins over the ones below.
        drop_rate: dropout before the classifier (Video Swin's 0.5).
        drop_path_rate: stochastic depth of the last block, rising linearly from 0 at the first.
        pretrained: weights to start from, any checkpoint ``create_model(pretrained=)`` takes (2D
            SwinV2: inflated; a classifier with another class count: re-initialised). Read only
            when a fit starts from scratch, never by ``load_from_checkpoint`` or ``ckpt_path``.
        temporal_init: how the 2D patch embedding is spread over time when inflating.
        lr: peak learning rate of the head (and of the backbone unless ``backbone_lr_mult``).
        backbone_lr_mult: backbone learning rate / head learning rate (0.1 for inflated weights).
        warmup_epochs: linear warmup length; the schedule is cosine, stepped every optimiser step.
        max_views_per_forward: views per model call in validation and test (prediction runs the
            batches its data loader makes, whose size counts views).
        compile: ``torch.compile(fullgraph=True)`` the patch embedding and stages when a run
            starts (in place: checkpoints keep their keys); each new input shape compiles again.
        clip_geometry: the data's clips, linked from the data module (input-size warnings).
    """

    def __init__(
        self,
        model: str = "videoswinv2_tiny",
        num_classes: int | None = None,
        multi_label: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        drop_rate: float = 0.5,
        drop_path_rate: float = 0.1,
        pretrained: str | None = None,
        temporal_init: Literal["average", "center"] = "average",
        lr: float = 1e-3,
        weight_decay: float = 0.02,
        betas: tuple[float, float] = (0.9, 0.999),
        backbone_lr_mult: float = 0.1,
        warmup_epochs: float = 2.5,
        min_lr_ratio: float = 0.0,
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        max_views_per_forward: int = 6,
        compile: bool = False,
        clip_geometry: ClipGeometry | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore="clip_geometry")
        num_classes = self.hparams.num_classes = 400 if num_classes is None else num_classes
        kwargs = {"drop_rate": drop_rate, "drop_path_rate": drop_path_rate, **(model_kwargs or {})}
        self._compose(create_model(model, num_classes=num_classes, **kwargs), clip_geometry)
        # Training accuracy of single-label runs (mixed clips' targets have no mAP worth reading).
        self.train_metrics = None if multi_label else _accuracies(num_classes, "train/")
        self.val_scores = _SplitScores(self, "val", num_classes, multi_label)
        self.test_scores = _SplitScores(self, "test", num_classes, multi_label)
        # A skipped non-finite step is reported by NonFiniteSteps; the epoch's mean leaves it out.
        self.train_loss, self.val_loss = MeanMetric(nan_strategy="ignore"), MeanMetric()
        self.val_videos = SumMetric()  # summed over ranks: no rank may skip a collective alone

    @property
    def monitored_metric(self) -> str:
        """The score the best checkpoint is chosen by (``BestCheckpoint``)."""
        return "val/mAP" if self.hparams.multi_label else "val/top1"

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Soft targets ``(B, K)``: cross-entropy of one softmax, or binary cross-entropy of each
        class's sigmoid (multi-label)."""
        if self.hparams.multi_label:
            return F.binary_cross_entropy_with_logits(logits.float(), targets)
        return F.cross_entropy(logits.float(), targets)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.backbone(clips)

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
        loss = self._loss(logits, targets)
        self.train_loss(loss)
        self.log(
            "train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(labels)
        )
        if self.train_metrics is not None:
            self.train_metrics(logits, labels)
            self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=len(labels))
        self.log_dict(learning_rates(self.trainer.optimizers[0].param_groups), on_step=True, on_epoch=False)
        return loss

    def optimizer_groups(self) -> list[dict[str, Any]]:
        hp = self.hparams
        return param_groups(
            self.backbone, lr=hp.lr, weight_decay=hp.weight_decay, backbone_lr_mult=hp.backbone_lr_mult
        )

    def _evaluate(
        self, batch: dict[str, Any]
    ) -> tuple[list[Result], torch.Tensor | None, torch.Tensor | None]:
        """An evaluation batch -> the results it completes, and the probabilities ``(n, K)`` and
        labels ``(n,)`` (multi-label: multi-hot ``(n, K)``) of the videos scored (None when none)."""
        max_views = self.hparams.max_views_per_forward
        if "item" not in batch:  # one clip per video: a result at once
            if len(batch["label"]) == 0:
                return [], None, None
            probs = self.evaluator.outputs(batch["video"], max_views)["probs"]
            labels = batch["label"]
            if self.hparams.multi_label and labels.dim() == 1:  # single-label data, sigmoid outputs
                labels = F.one_hot(labels, probs.shape[1]).float()
            return [], probs.to(self.device), labels
        results = self.evaluator.results(batch, max_views)
        scored = [r for r in results if r.ok]
        if not scored:
            return results, None, None
        probs = torch.stack([r.probs for r in scored]).to(self.device)
        if self.hparams.multi_label:
            labels = multi_hot([r.item.label for r in scored], probs.shape[1]).to(self.device)
        else:
            labels = torch.tensor([r.item.label for r in scored], device=self.device)
        return results, probs, labels

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        _, probs, labels = self._evaluate(batch)
        if probs is None:
            return
        if self.hparams.multi_label:
            self.val_loss(F.binary_cross_entropy(probs.clamp(1e-7, 1 - 1e-7), labels))
        else:
            self.val_loss(F.nll_loss(probs.clamp(min=1e-12).log(), labels))
        self.val_scores.update(probs, labels)
        self.val_videos(len(labels))

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> list[Result]:
        results, probs, labels = self._evaluate(batch)
        if probs is not None:
            self.test_scores.update(probs, labels)
        return results

    # Metrics are computed and logged at epoch end on every rank: under DDP each rank sees its own
    # number of videos (no padding duplicates), so nothing collective may depend on a rank's batches.

    def on_validation_epoch_end(self) -> None:
        if self.val_videos.compute() == 0:
            # Nothing was scored: 0.0 would rank as a real (worst or, first, best) result. NaN is
            # what ModelCheckpoint ranks below every real score, and what the curves show as a gap.
            if not self.trainer.sanity_checking:
                rank_zero_warn(
                    f"epoch {self.current_epoch}: no validation video could be decoded (see the broken "
                    f"videos above), so {self.monitored_metric} and val/loss are logged as NaN, below any "
                    "real score"
                )
            values = {key: math.nan for key in [*self.val_scores.names(), "val/loss"]}
            self.val_scores.compute_and_reset()  # nothing to score: only the reset matters
        else:
            values = {**self.val_scores.compute_and_reset(), "val/loss": self.val_loss.compute()}
        for metric in (self.val_loss, self.val_videos):
            metric.reset()
        self.log_dict(values, prog_bar=True)
        # TensorBoard shows hp_metric beside the hyper-parameters (it stays -1 unless logged).
        self.log("hp_metric", values[self.monitored_metric])

    def on_test_start(self) -> None:
        super().on_test_start()  # the bias cache of evaluation loops
        if self.trainer.ckpt_path is None and self.global_step == 0 and not self.pretrained_weights.loaded:
            rank_zero_warn(
                "testing a model that was neither trained nor loaded from a checkpoint: its classifier is "
                "random, so the scores mean nothing. Pass --ckpt_path RUN/checkpoints/last.ckpt"
            )

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_scores.compute_and_reset())
