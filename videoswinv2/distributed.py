"""The one collective the package needs outside Lightning's own: gathering Python lists."""

from __future__ import annotations

import torch.distributed as dist


def gather_lists(items: list) -> list:
    """Concatenate a per-rank list over all ranks, rank order (uneven lengths are fine).

    A collective under DDP: every rank must call it. Without a process group it returns ``items``.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items
    gathered: list[list] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]
