"""Mixup and CutMix for clip batches ``(B, C, T, H, W)``, with soft targets (of one class per
clip, or multi-hot: several)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """Class indices ``(B,)`` or multi-hot ``(B, num_classes)`` -> ``(B, num_classes)``, with
    ``smoothing`` spread evenly over all classes (the convention of
    ``F.cross_entropy(label_smoothing=...)``, and of timm's binary cross-entropy for multi-hot)."""
    hot = labels.float() if labels.dim() == 2 else F.one_hot(labels, num_classes).float()
    return hot * (1 - smoothing) + smoothing / num_classes


def mix_clips(
    clips: torch.Tensor,
    labels: torch.Tensor,
    *,
    num_classes: int,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each clip with the batch reversed; ``labels`` are class indices ``(B,)`` or multi-hot
    ``(B, K)``; returns mixed clips and soft targets ``(B, K)``. With
    both alphas set, each batch picks mixup or CutMix with equal odds (timm's switch). CutMix cuts
    the same box out of every frame, so motion inside it stays intact."""
    targets = smooth_one_hot(labels, num_classes, label_smoothing)
    choices = [(kind, a) for kind, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not choices:
        return clips, targets
    kind, alpha = choices[int(torch.randint(len(choices), (1,)))]
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    if kind == "mixup":
        mixed = clips * lam + clips.flip(0) * (1 - lam)
    else:
        H, W = clips.shape[-2:]
        cut_h, cut_w = int(H * (1 - lam) ** 0.5), int(W * (1 - lam) ** 0.5)
        cy, cx = (int(torch.randint(n, (1,))) for n in (H, W))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, H)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, W)
        mixed = clips.clone()
        mixed[..., y0:y1, x0:x1] = clips.flip(0)[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (H * W)
    return mixed, targets * lam + targets.flip(0) * (1 - lam)
