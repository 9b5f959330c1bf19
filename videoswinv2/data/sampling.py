"""The training order and the randomness of each training sample, as functions of (seed, epoch).

:class:`ResumableSampler` shuffles like ``DistributedSampler`` and yields :class:`SampleKey` s:
the video's index and a seed from ``(seed, epoch, index)``, from which the dataset draws all that
is random about the sample, so its pixels depend on no DataLoader worker. The sampler's state
(epoch, position) goes into every checkpoint: a run resumed mid-epoch continues the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler


class SampleKey(NamedTuple):
    """What a training sampler hands the dataset: the video's index and the sample's seed."""

    index: int
    seed: int


def derive_seed(*entropy: int) -> int:
    """A 63-bit seed mixed from non-negative integers (numpy's ``SeedSequence``): nearby inputs,
    such as consecutive epochs or indices, give unrelated streams."""
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


@contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run the block on torch's CPU generator seeded with ``seed``, then put the caller's state
    back (torchvision's random transforms draw from the global generator and take no other)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


class ResumableSampler(DistributedSampler):
    """``DistributedSampler``'s shuffled, sharded order, yielding :class:`SampleKey` s.

    ``state_dict()`` is ``{"epoch", "position"}`` (samples of this rank's share handed out). After
    ``load_state_dict`` the next iteration continues there (the next epoch if that one was
    complete); ``set_epoch`` to another epoch starts it afresh. Every rank resumes at the same
    position of its share, so rank 0's state, which a checkpoint holds, serves every rank.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        if seed < 0:
            raise ValueError(f"the training seed must be >= 0, got {seed}")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.position = 0  # samples handed out by the current iterator
        self._resume_at: tuple[int, int] | None = None  # (epoch, position) from load_state_dict

    def __iter__(self) -> Iterator[SampleKey]:  # type: ignore[override]
        indices = list(super().__iter__())
        start = 0
        if self._resume_at is not None and self._resume_at[0] == self.epoch:
            start = self._resume_at[1]
        self._resume_at = None
        self.position = start
        for index in indices[start:]:
            self.position += 1
            yield SampleKey(index, derive_seed(self.seed, self.epoch, index))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        epoch, position = int(state["epoch"]), int(state["position"])
        if position >= self.num_samples:  # the saved epoch was complete: the next one is due
            epoch, position = epoch + 1, 0
        # The epoch is set here too: Lightning creates the resumed iterator before it sets the
        # epoch of a resumed run.
        self.set_epoch(epoch)
        self.position = position
        self._resume_at = (epoch, position)
