"""Multi-view evaluation: chunked view forwards, per-video averaging, and the reports a test run
leaves behind (``predictions.csv``, per-class accuracy and confusion-matrix images)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


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


def save_accuracy_figures(out_dir: Path, confusion: torch.Tensor, classes: Sequence[str]) -> list[Path]:
    """Per-class accuracy (sorted bars) and, for up to 50 classes, the row-normalised confusion
    matrix, as PNG files in ``out_dir``. ``confusion[i, j]`` counts videos of class i predicted j."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = confusion.float().cpu()
    support = confusion.sum(1)
    accuracy = torch.where(support > 0, confusion.diag() / support.clamp(min=1), torch.nan)
    order = torch.argsort(torch.nan_to_num(accuracy, nan=-1.0), descending=True)
    n = len(classes)
    saved = []

    fig, ax = plt.subplots(
        figsize=(max(6.0, 0.12 * n + 2), 4 + (0.08 * max(len(c) for c in classes) if n <= 60 else 0))
    )
    ax.bar(range(n), accuracy[order].nan_to_num(0).numpy(), color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("top-1 accuracy")
    ax.set_title(f"Per-class accuracy ({n} classes, mean {torch.nanmean(accuracy):.3f})")
    if n <= 60:
        ax.set_xticks(range(n), [classes[i] for i in order], rotation=90, fontsize=7)
    else:
        ax.set_xlabel("classes, sorted by accuracy")
    fig.tight_layout()
    saved.append(out_dir / "per_class_accuracy.png")
    fig.savefig(saved[-1], dpi=100)
    plt.close(fig)

    if n <= 50:
        fig, ax = plt.subplots(figsize=(2 + 0.35 * n, 2 + 0.35 * n))
        normalised = confusion / support.clamp(min=1)[:, None]
        ax.imshow(normalised.numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(n), classes, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix (rows normalised)")
        fig.tight_layout()
        saved.append(out_dir / "confusion_matrix.png")
        fig.savefig(saved[-1], dpi=100)
        plt.close(fig)
    return saved
