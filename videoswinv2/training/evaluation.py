"""Multi-view evaluation in one place, for test, predict, extract-features and timeline: per-view
outputs -> one :class:`Result` per video (or timeline window), its views' probabilities (softmax,
or independent sigmoids for a multi-label model) reduced by the item's mean or max, the one row
schema every output is written in, and average precision (multi-label scores). A video that could not be read is a result too
(``failed``, with the reason), so every output records broken videos the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.functional.classification import multilabel_average_precision
from torchmetrics.utilities import dim_zero_cat

from videoswinv2.data.view_stream import Item
from videoswinv2.models.swin_transformer_v2_3d import SwinTransformerV2_3D

OK, FAILED = "ok", "failed"


@dataclass
class Result:
    """One item's result: ``probs`` ``(K,)`` of its views by the item's reduction, ``features``
    ``(V, C')`` pooled pre-logits per view and, when asked for, ``feature_map``
    ``(V, C', T', H', W')``; or, for a video that failed, only ``status`` and ``reason``."""

    item: Item
    status: str = OK
    reason: str = ""
    probs: torch.Tensor | None = None
    features: torch.Tensor | None = None
    feature_map: torch.Tensor | None = None

    @classmethod
    def from_views(cls, item: Item, views: Sequence[dict[str, torch.Tensor]]) -> Result:
        stacked = {key: torch.stack([view[key] for view in views]) for key in views[0]}
        probs = stacked.pop("probs", None)  # the rest: features, feature_map
        if probs is not None:
            probs = probs.amax(0) if item.reduction == "max" else probs.mean(0)
        return cls(item, probs=probs, **stacked)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def above(self, threshold: float) -> list[tuple[int, float]]:
        """The classes whose probability is at least ``threshold``, most probable first."""
        if self.probs is None:
            return []
        chosen = (self.probs >= threshold).nonzero().flatten()
        return sorted(zip(chosen.tolist(), self.probs[chosen].tolist()), key=lambda cp: -cp[1])

    def top(self, k: int) -> list[tuple[int, float]]:
        """The ``k`` most probable classes (fewer if there are fewer) with their probabilities."""
        if self.probs is None:
            return []
        values, classes = self.probs.topk(min(k, len(self.probs)))
        return list(zip(classes.tolist(), values.tolist()))


class ViewGatherer:
    """Collects per-view outputs (views of an item may arrive over several batches, interleaved
    with other items) and makes each item's :class:`Result` once all its views are in."""

    def __init__(self) -> None:
        self._pending: dict[Item, list[dict[str, torch.Tensor] | None]] = {}

    def add(
        self, items: Sequence[Item], views: Sequence[int], outputs: dict[str, torch.Tensor]
    ) -> list[Result]:
        """``outputs``: per-view tensors, dim 0 over the batch's views. Returns finished items."""
        done = []
        for k, (item, view) in enumerate(zip(items, views)):
            slots = self._pending.setdefault(item, [None] * item.num_views)
            slots[view] = {key: value[k] for key, value in outputs.items()}
            if all(slot is not None for slot in slots):
                done.append(Result.from_views(item, self._pending.pop(item)))  # type: ignore[arg-type]
        return done

    def batch_results(self, batch: dict[str, Any], outputs: dict[str, torch.Tensor]) -> list[Result]:
        """The results a stream batch completes: finished items, then the failed ones (whose views
        already gathered are dropped)."""
        results = self.add(batch["item"], batch["view"].tolist(), outputs) if outputs else []
        for item, reason in batch["failed"]:
            self._pending.pop(item, None)
            results.append(Result(item, FAILED, reason))
        return results

    def reset(self) -> None:
        """Forget items whose views stopped coming (a loop cut short by ``limit_*_batches``)."""
        self._pending.clear()


class ViewEvaluator:
    """Evaluation over views with a backbone: the per-view outputs of clips, and the results a
    ``ViewStream`` batch completes. A module calls :meth:`start` and :meth:`end` around each loop.
    ``multi_label``: the classifier's outputs are independent sigmoids, not one softmax."""

    def __init__(self, backbone: SwinTransformerV2_3D, multi_label: bool = False) -> None:
        self.backbone = backbone
        self.multi_label = multi_label
        self.gatherer = ViewGatherer()
        self._feature_maps = False

    def keep_feature_maps(self, keep: bool = True) -> None:
        """Whether results hold each view's feature map: they are large, so only when a writer
        asks (``videoswinv2.inference.FeatureWriter(feature_map=True)``)."""
        self._feature_maps = keep

    # The weights hold still through an evaluation or prediction loop, so each block's position
    # bias + mask is added once per loop instead of once per forward (~9% of a CPU bf16 forward).

    def start(self) -> None:
        self.backbone.cache_attention_bias(True)
        self.gatherer.reset()  # items of a loop cut short by limit_*_batches

    def end(self) -> None:
        self.backbone.cache_attention_bias(False)

    def outputs(self, clips: torch.Tensor, max_views: int | None = None) -> dict[str, torch.Tensor]:
        """Views ``(b, C, T, H, W)`` -> per-view ``features`` ``(b, C')`` pooled pre-logits,
        ``probs`` ``(b, K)`` (softmax, or sigmoids) when the backbone has a classifier and, when kept,
        ``feature_map`` ``(b, C', T', H', W')``; float32 on the CPU, ``max_views`` views per
        model call."""
        outputs: list[dict[str, torch.Tensor]] = []
        for chunk in clips.split(max_views or len(clips)):
            maps = self.backbone.forward_features(chunk)
            pooled = self.backbone.forward_head(maps, pre_logits=True)
            out = {"features": pooled.float()}
            if self.backbone.num_classes > 0:
                logits = self.backbone.head(pooled).float()
                out["probs"] = logits.sigmoid() if self.multi_label else logits.softmax(-1)
            if self._feature_maps:
                out["feature_map"] = maps.float()
            outputs.append(out)
        return {key: torch.cat([out[key] for out in outputs]).cpu() for key in outputs[0]}

    def results(self, batch: dict[str, Any], max_views: int | None = None) -> list[Result]:
        """The results a ``ViewStream`` batch completes (finished items, then failed videos)."""
        outputs = self.outputs(batch["video"], max_views) if len(batch["video"]) else {}
        return self.gatherer.batch_results(batch, outputs)


BASE_COLUMNS = ("video", "status", "reason")
LABEL_COLUMNS = ("label", "correct")  # when the true class is known (a test run)
WINDOW_COLUMNS = ("window", "start_s", "end_s")  # timeline windows


PREDICTED_COLUMNS = ("predicted", "predicted_probs")  # multi-label: every class over the threshold
LABEL_SEPARATOR = ";"  # between the names of one multi-label row's classes
DEFAULT_THRESHOLD = 0.5  # a multi-label model predicts the classes whose sigmoid reaches it


@dataclass(frozen=True)
class RowSchema:
    """How a :class:`Result` is written: ``video,status,reason``, then ``label,correct`` (test) or
    ``window,start_s,end_s`` (timeline), then, for a multi-label model (``threshold`` set),
    ``predicted,predicted_probs`` (every class whose probability reaches the threshold, most
    probable first, ``;``-separated), then ``top1_label,top1_prob,...`` up to ``topk``. A
    multi-label ``label`` holds the true classes ``;``-separated and ``correct`` says whether the
    predicted ones are exactly those. In ``.jsonl`` files the top-k are two lists, ``labels`` and
    ``probs``, and the predicted ones ``predicted`` and ``predicted_probs``."""

    topk: int
    labelled: bool = False
    windows: bool = False
    threshold: float | None = None

    def columns(self) -> list[str]:
        return [
            *BASE_COLUMNS,
            *(LABEL_COLUMNS if self.labelled else ()),
            *(WINDOW_COLUMNS if self.windows else ()),
            *(PREDICTED_COLUMNS if self.threshold is not None else ()),
            *(f"top{j}_{x}" for j in range(1, self.topk + 1) for x in ("label", "prob")),
        ]

    def row(self, result: Result, classes: Sequence[str], jsonl: bool = False) -> dict[str, Any]:
        item, top = result.item, result.top(self.topk)
        predicted = result.above(self.threshold) if self.threshold is not None else []
        row: dict[str, Any] = {"video": item.video, "status": result.status, "reason": result.reason}
        if self.labelled and isinstance(item.label, frozenset):
            row["label"] = LABEL_SEPARATOR.join(classes[c] for c in sorted(item.label))
            row["correct"] = int({c for c, _ in predicted} == set(item.label)) if result.ok else ""
        elif self.labelled:
            row["label"] = classes[item.label] if item.label >= 0 else ""
            row["correct"] = int(top[0][0] == item.label) if top else ""
        if self.windows and item.window is not None:
            row["window"] = item.window.number
            row["start_s"], row["end_s"] = (
                round(t, 3) if jsonl else f"{t:.3f}" for t in (item.window.start_s, item.window.end_s)
            )
        elif self.windows:
            row.update(dict.fromkeys(WINDOW_COLUMNS, ""))
        if jsonl:
            if self.threshold is not None:
                row["predicted"] = [classes[c] for c, _ in predicted]
                row["predicted_probs"] = [round(p, 6) for _, p in predicted]
            row["labels"] = [classes[c] for c, _ in top]
            row["probs"] = [round(p, 6) for _, p in top]
        else:
            if self.threshold is not None:
                row["predicted"] = LABEL_SEPARATOR.join(classes[c] for c, _ in predicted)
                row["predicted_probs"] = LABEL_SEPARATOR.join(f"{p:.6f}" for _, p in predicted)
            for j, (c, p) in enumerate(top, 1):
                row[f"top{j}_label"], row[f"top{j}_prob"] = classes[c], f"{p:.6f}"
        return row


def row_top(row: dict[str, Any]) -> list[tuple[str, float]]:
    """A written row's top-k ``(label, probability)``, from either file format."""
    if "labels" in row:
        return list(zip(row["labels"], map(float, row["probs"])))
    top, j = [], 1
    while row.get(f"top{j}_label"):
        top.append((row[f"top{j}_label"], float(row[f"top{j}_prob"])))
        j += 1
    return top


def row_predicted(row: dict[str, Any]) -> list[tuple[str, float]]:
    """A written multi-label row's classes over the threshold ``(label, probability)``, from either
    file format (none for a single-label row)."""
    labels, probs = row.get("predicted") or [], row.get("predicted_probs") or []
    if isinstance(labels, str):
        labels, probs = labels.split(LABEL_SEPARATOR), probs.split(LABEL_SEPARATOR)
    return list(zip(labels, map(float, probs)))


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """``(K, K)`` confusion counts (row = true class) -> ``(K,)`` accuracy, NaN for unseen classes."""
    confusion = confusion.float().cpu()
    support = confusion.sum(1)
    return torch.where(support > 0, confusion.diag() / support.clamp(min=1), torch.nan)


def mean_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Mean of the per-class accuracies over the classes present in the split; a class with no
    video does not count, even when videos were predicted as it."""
    return per_class_accuracy(confusion).nanmean()


def average_precisions(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class average precision (torchmetrics', the area under the stepwise precision-recall
    curve, as scikit-learn's): ``probs`` and multi-hot ``targets`` ``(N, K)`` -> ``(K,)``, NaN for
    a class with no positive video, which PySlowFast's Charades mAP leaves out too."""
    positives = targets.sum(0) > 0
    with warnings.catch_warnings():  # torchmetrics warns of each class without positives
        warnings.simplefilter("ignore", UserWarning)
        ap = multilabel_average_precision(
            probs.float(), targets.long(), num_labels=targets.shape[1], average="none"
        )
    return torch.where(positives, ap, torch.nan)


def mean_average_precision(ap: torch.Tensor) -> torch.Tensor:
    """mAP: the mean over the classes that have a positive video."""
    return ap.nanmean()


class AveragePrecisions(Metric):
    """:func:`average_precisions` over every video of an epoch (on every rank)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        self.probs.append(probs.float())
        self.targets.append(targets.float())

    def compute(self) -> torch.Tensor:
        return average_precisions(dim_zero_cat(self.probs), dim_zero_cat(self.targets))
