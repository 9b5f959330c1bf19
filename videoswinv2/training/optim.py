"""Optimiser parameter groups and the learning-rate schedule, as pure functions."""

from __future__ import annotations

import math
import os
from typing import Any

import lightning as L
import torch
from torch import nn

# Besides norms and biases, SwinV2's own parameters that must not be pulled towards zero.
NO_DECAY_KEYWORDS = ("logit_scale", "cpb_mlp", "q_bias", "v_bias")


def decays(name: str, param: nn.Parameter) -> bool:
    """Whether weight decay applies: not to norms and biases (1-D), nor to SwinV2's attention
    temperature, continuous-position-bias MLP and q/v biases."""
    return param.ndim > 1 and not any(k in name for k in NO_DECAY_KEYWORDS)


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    backbone_lr_mult: float = 1.0,
    head_prefix: str = "head.",
) -> list[dict]:
    """AdamW groups: (backbone | head) x (decay | no decay).

    The backbone (everything outside ``head_prefix``) trains at ``lr * backbone_lr_mult``; Video
    Swin uses 0.1 for a backbone inflated from image weights. Empty groups are left out; each
    group carries its ``name`` for logging.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((name.startswith(head_prefix), decays(name, param)), []).append(param)
    result = []
    for (is_head, decay), params in sorted(groups.items()):
        result.append(
            {
                "name": f"{'head' if is_head else 'backbone'}_{'decay' if decay else 'no_decay'}",
                "params": params,
                "lr": lr * (1.0 if is_head else backbone_lr_mult),
                "weight_decay": weight_decay if decay else 0.0,
            }
        )
    return result


def learning_rates(groups: list[dict]) -> dict[str, float]:
    """Current rates to log, one per distinct base rate (groups differing only in weight decay
    share one curve): ``{"lr": r}`` when every group has the same, else ``{"lr/head": .., ...}``
    named by what the sharing groups' names have in common."""
    by_base: dict[float, list[tuple[int, dict]]] = {}
    for i, group in enumerate(groups):
        by_base.setdefault(group.get("initial_lr", group["lr"]), []).append((i, group))
    if len(by_base) == 1:
        return {"lr": groups[0]["lr"]}
    rates = {}
    for members in by_base.values():
        names = [group.get("name", f"pg{i}") for i, group in members]
        shared = os.path.commonprefix(names).rstrip("_") if len(names) > 1 else names[0]
        rates[f"lr/{shared or '+'.join(names)}"] = members[0][1]["lr"]
    return rates


def warmup_cosine(step: int, *, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Learning-rate factor at optimiser ``step``: linear warmup from 0 over ``warmup_steps``,
    then cosine decay from 1 to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw_warmup_cosine(
    trainer: L.Trainer,
    groups: list[dict],
    *,
    lr: float,
    betas: tuple[float, float],
    warmup_epochs: float,
    min_lr_ratio: float,
) -> dict[str, Any]:
    """What ``configure_optimizers`` returns: AdamW over ``groups`` and :func:`warmup_cosine`
    stepped every optimiser step, over the trainer's whole run (``warmup_epochs`` may be a
    fraction)."""
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))
    total = trainer.estimated_stepping_batches
    warmup = round(warmup_epochs * total / max(trainer.max_epochs or 1, 1))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(step, total_steps=total, warmup_steps=warmup, min_ratio=min_lr_ratio),
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
