"""What a test run leaves in its log directory, written by a callback: ``predictions.csv`` and
the per-class accuracy and confusion-matrix images, or for a multi-label model the per-class
average precision (``per_class_ap.csv`` and its image)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch

from videoswinv2.data.datasets import multi_hot
from videoswinv2.distributed import gather_lists
from videoswinv2.files import replaced_atomically

from .evaluation import (
    DEFAULT_THRESHOLD,
    RowSchema,
    average_precisions,
    mean_average_precision,
    per_class_accuracy,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


class TestReport(pl.Callback):
    """Writes a test run's results into its log directory: ``predictions.csv``, one row per video
    in dataset order in the :class:`~videoswinv2.training.evaluation.RowSchema` with the true label
    (top-``topk``, a ``failed`` row for a video that could not be read), and
    ``per_class_accuracy.png`` and ``confusion_matrix.png`` of the videos scored. For a
    multi-label model the rows also hold the classes whose probability reaches ``threshold``, and
    ``per_class_ap.csv`` / ``per_class_ap.png`` give each class's average precision. One of the
    trainer's default callbacks."""

    def __init__(self, topk: int = 5, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.topk, self.threshold = topk, threshold
        # (index, row, label, scores): the predicted class, or a multi-label video's probabilities
        self._rows: list[tuple[int, dict[str, Any], Any, Any]] = []
        self._classes: list[str] | None = None
        self._multi_label = False

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows = []
        self._classes = list(getattr(trainer.datamodule, "classes", None) or []) or None
        self._multi_label = bool(pl_module.hparams.get("multi_label", False))

    def _schema(self, classes: Sequence[str]) -> RowSchema:
        topk = min(self.topk, len(classes) or self.topk)
        return RowSchema(topk, labelled=True, threshold=self.threshold if self._multi_label else None)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        for result in outputs or []:
            if self._classes is None and result.probs is not None:
                self._classes = [str(c) for c in range(len(result.probs))]
            classes = self._classes or []
            if self._multi_label:
                scores = result.probs if result.ok else None
            else:
                scores = result.top(1)[0][0] if result.ok else -1
            row = self._schema(classes).row(result, classes)
            self._rows.append((result.item.index, row, result.item.label, scores))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rows = gather_lists(self._rows)
        self._rows = []
        out_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a collective under DDP
        if not trainer.is_global_zero or not rows:
            return
        rows.sort(key=lambda row: row[0])
        if len({index for index, *_ in rows}) != len(rows):
            raise RuntimeError("a video was scored more than once; every video must be counted exactly once")
        classes = self._classes or []
        path = out_dir / "predictions.csv"
        write_csv(path, self._schema(classes).columns(), [row for _, row, _, _ in rows])
        if self._multi_label:
            scored = [(label, probs) for _, _, label, probs in rows if probs is not None]
            written = [path, *save_average_precision(out_dir, scored, classes)]
        else:
            scored = [(label, predicted) for _, _, label, predicted in rows if predicted >= 0]
            written = [path, *save_accuracy_figures(out_dir, _confusion(scored, len(classes)), classes)]
        failed = len(rows) - len(scored)
        log.info(
            "test: %d videos%s; wrote %s",
            len(rows),
            f" ({failed} could not be read)" if failed else "",
            ", ".join(map(str, written)),
        )


def _confusion(pairs: Sequence[tuple[int, int]], num_classes: int) -> torch.Tensor:
    """``(K, K)`` counts of videos of class i predicted j."""
    scored = torch.tensor(pairs, dtype=torch.long).view(-1, 2)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_(
        (scored[:, 0], scored[:, 1]), torch.ones(len(scored), dtype=torch.long), accumulate=True
    )
    return confusion


def save_average_precision(
    out_dir: Path, scored: Sequence[tuple[int | frozenset[int], torch.Tensor]], classes: Sequence[str]
) -> list[Path]:
    """``per_class_ap.csv`` (class, positive videos, AP; empty for a class without positives)
    and ``per_class_ap.png`` of multi-label videos' ``(true classes, probabilities)``."""
    if not scored:
        return []
    probs = torch.stack([p for _, p in scored])
    targets = multi_hot([label for label, _ in scored], probs.shape[1])
    ap = average_precisions(probs, targets)
    positives = targets.sum(0).long().tolist()
    table = out_dir / "per_class_ap.csv"
    rows = [
        {"class": name, "positives": n, "ap": "" if value != value else f"{value:.6f}"}
        for name, n, value in zip(classes, positives, ap.tolist())
    ]
    write_csv(table, ["class", "positives", "ap"], rows)
    title = f"Per-class average precision (mAP {mean_average_precision(ap):.3f})"
    figure = per_class_figure(ap, classes, title, "average precision")
    figure.savefig(out_dir / "per_class_ap.png", dpi=100)
    return [table, out_dir / "per_class_ap.png"]


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Rows to ``path``, whole or not at all."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_atomically(path) as file:
        file.write(text.getvalue().encode())


# Classes shown by name at each end of the sorted per-class plot when there are too many to label all.
_NAMED_AT_EACH_END = 15
_MAX_LABELLED = 60


def per_class_figure(values: torch.Tensor, classes: Sequence[str], title: str, axis: str) -> Figure:
    """Horizontal bars of a per-class score in 0..1 (NaN: no video), best class at the top. Up to
    60 classes are all named; beyond that the 15 best and 15 worst are named and the middle is
    summarised as one gap."""
    from matplotlib.figure import Figure

    order = torch.argsort(torch.nan_to_num(values, nan=-1.0), descending=True).tolist()
    n, k = len(classes), _NAMED_AT_EACH_END
    rows = order[:k] + [None] + order[-k:] if n > _MAX_LABELLED else order
    labels = [f"... {n - 2 * k} classes ..." if i is None else f"{classes[i]}" for i in rows]
    bars = [0.0 if i is None else float(values[i].nan_to_num(0)) for i in rows]
    longest = max(len(label) for label in labels)
    fig = Figure(figsize=(4.5 + 0.075 * longest, 1.6 + 0.24 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]  # first row at the top
    ax.barh(y, bars, color=["tab:gray" if i is None else "tab:blue" for i in rows], height=0.75)
    ax.set_yticks(y, labels, fontsize=9)
    for yy, value, i in zip(y, bars, rows):
        if i is not None:
            ax.text(min(value, 1.0) + 0.01, yy, f"{value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.12)  # room for the value after a full bar
    ax.set_xticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel(axis)
    shown = f"{n} classes" if n <= _MAX_LABELLED else f"the {k} best and worst of {n} classes"
    ax.set_title(f"{title}\n{shown}, sorted", fontsize=11)
    return fig


def per_class_accuracy_figure(confusion: torch.Tensor, classes: Sequence[str]) -> Figure:
    """:func:`per_class_figure` of the top-1 accuracy of each class."""
    accuracy = per_class_accuracy(confusion)
    title = f"Per-class accuracy (mean {torch.nanmean(accuracy):.3f})"
    return per_class_figure(accuracy, classes, title, "top-1 accuracy")


def confusion_matrix_figure(confusion: torch.Tensor, classes: Sequence[str]) -> Figure:
    """Row-normalised confusion matrix with a colour bar; class names on both axes up to 60
    classes, class indices beyond that (the names would not be legible)."""
    from matplotlib.figure import Figure

    confusion = confusion.float().cpu()
    normalised = confusion / confusion.sum(1, keepdim=True).clamp(min=1)
    n = len(classes)
    named = n <= _MAX_LABELLED
    longest = max(len(c) for c in classes) if named else 0
    side = min(max(4.0, 0.28 * n), 12.0) + 0.07 * longest
    fig = Figure(figsize=(side + 1.5, side + 0.8), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(normalised.numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    if named:
        font = 9 if n <= 20 else 7
        ax.set_xticks(range(n), classes, rotation=90, fontsize=font)
        ax.set_yticks(range(n), classes, fontsize=font)
        if n <= 10:  # few cells: print the fractions in them
            for (row, col), value in zip(
                torch.cartesian_prod(torch.arange(n), torch.arange(n)).tolist(), normalised.flatten()
            ):
                if value > 0:
                    color = "white" if value > 0.5 else "black"
                    ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8, color=color)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    else:
        ax.tick_params(labelsize=11)
        ax.set_xlabel(f"predicted class index (0-{n - 1})", fontsize=12)
        ax.set_ylabel(f"true class index (0-{n - 1})", fontsize=12)
    ax.set_title(f"Confusion matrix, rows normalised ({n} classes)", fontsize=11 if named else 14)
    return fig


def save_accuracy_figures(out_dir: Path, confusion: torch.Tensor, classes: Sequence[str]) -> list[Path]:
    """``per_class_accuracy.png`` and ``confusion_matrix.png`` in ``out_dir``; returns their paths.
    ``confusion[i, j]`` counts videos of class i predicted j."""
    saved = []
    for name, figure in (
        ("per_class_accuracy.png", per_class_accuracy_figure(confusion, classes)),
        ("confusion_matrix.png", confusion_matrix_figure(confusion, classes)),
    ):
        saved.append(out_dir / name)
        figure.savefig(saved[-1], dpi=100)
    return saved
