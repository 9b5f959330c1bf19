"""Multi-view evaluation: chunked view forwards, per-video averaging, and the reports a test run
leaves behind (``predictions.csv``, per-class accuracy and confusion-matrix images)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def average_view_probabilities(
    model: Callable[[torch.Tensor], torch.Tensor], views: torch.Tensor, max_views_per_forward: int
) -> torch.Tensor:
    """``(B, V, C, T, H, W)`` views -> ``(B, K)`` softmax probabilities averaged over the V views.

    Views go through the model at most ``max_views_per_forward`` at a time, so memory stays
    bounded whatever the batch size and number of views.
    """
    if max_views_per_forward < 1:
        raise ValueError(f"max_views_per_forward must be >= 1, got {max_views_per_forward}")
    B, V = views.shape[:2]
    flat = views.flatten(0, 1)
    probs = torch.cat([model(chunk).float().softmax(-1) for chunk in flat.split(max_views_per_forward)])
    return probs.view(B, V, -1).mean(1)


@dataclass(frozen=True)
class VideoPrediction:
    """One video's result: its dataset index, true label, and top-k classes with probabilities."""

    index: int
    label: int
    top_classes: tuple[int, ...]
    top_probs: tuple[float, ...]


def top_predictions(
    probs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor, k: int
) -> list[VideoPrediction]:
    values, classes = probs.float().topk(min(k, probs.shape[-1]), dim=-1)
    return [
        VideoPrediction(int(i), int(y), tuple(c.tolist()), tuple(v.tolist()))
        for i, y, c, v in zip(indices.cpu(), labels.cpu(), classes.cpu(), values.cpu())
    ]


def write_predictions_csv(
    path: Path, predictions: Sequence[VideoPrediction], video_paths: Sequence[str], classes: Sequence[str]
) -> None:
    """One row per video, in dataset order: path, true label, then top-k labels and probabilities."""
    rows = sorted(predictions, key=lambda p: p.index)
    if len({p.index for p in rows}) != len(rows):
        raise RuntimeError("a video was predicted more than once; every video must be counted exactly once")
    k = max((len(p.top_classes) for p in rows), default=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        header = ["video", "label", "correct"]
        for j in range(1, k + 1):
            header += [f"top{j}_label", f"top{j}_prob"]
        writer.writerow(header)
        for p in rows:
            row = [video_paths[p.index], classes[p.label], int(p.top_classes[0] == p.label)]
            for c, prob in zip(p.top_classes, p.top_probs):
                row += [classes[c], f"{prob:.6f}"]
            writer.writerow(row)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """``(K, K)`` confusion counts (row = true class) -> ``(K,)`` accuracy, NaN for unseen classes."""
    confusion = confusion.float().cpu()
    support = confusion.sum(1)
    return torch.where(support > 0, confusion.diag() / support.clamp(min=1), torch.nan)


def mean_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Mean of the per-class accuracies over the classes present in the split; a class with no
    video does not count, even when videos were predicted as it."""
    return per_class_accuracy(confusion).nanmean()


# Classes shown by name at each end of the sorted per-class plot when there are too many to label all.
_NAMED_AT_EACH_END = 15
_MAX_LABELLED = 60


def per_class_accuracy_figure(confusion: torch.Tensor, classes: Sequence[str]) -> Figure:
    """Horizontal bars, best class at the top. Up to 60 classes are all named; beyond that the
    15 best and 15 worst are named and the middle is summarised as one gap."""
    from matplotlib.figure import Figure

    accuracy = per_class_accuracy(confusion)
    order = torch.argsort(torch.nan_to_num(accuracy, nan=-1.0), descending=True).tolist()
    n = len(classes)
    if n > _MAX_LABELLED:
        k = _NAMED_AT_EACH_END
        rows = order[:k] + [None] + order[-k:]
    else:
        rows = order
    labels = [f"... {n - 2 * _NAMED_AT_EACH_END} classes ..." if i is None else f"{classes[i]}" for i in rows]
    values = [0.0 if i is None else float(accuracy[i].nan_to_num(0)) for i in rows]
    longest = max(len(label) for label in labels)
    fig = Figure(figsize=(4.5 + 0.075 * longest, 1.6 + 0.24 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    y = list(range(len(rows)))[::-1]  # first row at the top
    ax.barh(y, values, color=["tab:gray" if i is None else "tab:blue" for i in rows], height=0.75)
    ax.set_yticks(y, labels, fontsize=9)
    for yy, value, i in zip(y, values, rows):
        if i is not None:
            ax.text(min(value, 1.0) + 0.01, yy, f"{value:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.12)  # room for the value after a full bar
    ax.set_xticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("top-1 accuracy")
    shown = (
        f"{n} classes" if n <= _MAX_LABELLED else f"the {_NAMED_AT_EACH_END} best and worst of {n} classes"
    )
    ax.set_title(f"Per-class accuracy (mean {torch.nanmean(accuracy):.3f})\n{shown}, sorted", fontsize=11)
    return fig


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
