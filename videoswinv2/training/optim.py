"""Optimiser parameter groups and the learning-rate schedule, as pure functions."""

from __future__ import annotations

import math
import os
from typing import Any

import lightning as L
import torch
from torch import nn


def no_decay_keywords(model: nn.Module) -> set[str]:
    """What the model's parts say must not be pulled towards zero besides norms and biases (timm's
    ``no_weight_decay_keywords``: SwinV2's attention temperature, position-bias MLP, q/v biases)."""
    parts = (m for m in model.modules() if hasattr(m, "no_weight_decay_keywords"))
    return set().union(*(m.no_weight_decay_keywords() for m in parts))


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    backbone_lr_mult: float = 1.0,
    head_prefix: str = "head.",
) -> list[dict]:
    """AdamW groups, each with its ``name``: (backbone | head) x (decay | no decay), empty ones left
    out. The backbone (all outside ``head_prefix``) trains at ``lr * backbone_lr_mult``."""
    keywords = no_decay_keywords(model)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            decays = param.ndim > 1 and not any(k in name for k in keywords)
            groups.setdefault((name.startswith(head_prefix), decays), []).append(param)
    return [
        {
            "name": f"{'head' if is_head else 'backbone'}_{'decay' if decay else 'no_decay'}",
            "params": params,
            "lr": lr * (1.0 if is_head else backbone_lr_mult),
            "weight_decay": weight_decay if decay else 0.0,
        }
        for (is_head, decay), params in sorted(groups.items())
    ]


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
    stepped every optimiser step over the trainer's whole run."""
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))
    total = trainer.estimated_stepping_batches
    warmup = round(warmup_epochs * total / max(trainer.max_epochs or 1, 1))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine(step, total_steps=total, warmup_steps=warmup, min_ratio=min_lr_ratio),
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
