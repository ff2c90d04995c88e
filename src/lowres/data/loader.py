"""Batches of uint8 images on the training device, in a seeded order, sharded per rank.

Nothing is decoded here: images come from the decoded cache as one uint8 array. When the
dataset is resident, it is copied to the device once and every batch is a gather there;
otherwise each batch is gathered on the host into pinned memory and copied without
blocking. The order of an epoch is a pure function of (seed, epoch), so a run resumed in
the middle of an epoch continues with the very same batches.

Distributed runs: every rank builds the same permutation; global batch i is
perm[i*B:(i+1)*B] and rank r takes its items r, r+W, r+2W, ... So the samples of each global
step do not depend on the number of processes, and a resume may change it.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

EPOCH_SEED_STRIDE = 1_000_003  # keeps (seed, epoch) pairs from colliding


def batch_bounds(n: int, batch_size: int, world_size: int = 1) -> list[tuple[int, int]]:
    """[start, end) of every global training batch of an epoch of n images: full batches
    only. One batch shape for the whole run keeps a compiled model from recompiling (or
    going dynamic) for a smaller last batch, and batch norm from a tiny one; the epoch's
    order is random, so the up to batch_size - 1 images left out differ every epoch. A
    dataset smaller than one batch trains on one batch of all of it."""
    full = n // batch_size
    if full == 0:
        return [(0, n)] if n >= 2 * world_size else []
    return [(i * batch_size, (i + 1) * batch_size) for i in range(full)]


class EpochLoader:
    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
                 device: torch.device, resident: bool, seed: int, rank: int = 0,
                 world_size: int = 1):
        self.n = len(labels)
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        host_images = torch.from_numpy(np.ascontiguousarray(images))
        host_labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.resident = resident
        self.pin = device.type == "cuda"  # pinned pages make the host->device copy asynchronous
        if self.resident:
            self.images = host_images.to(device)
            self.labels = host_labels.to(device)
        else:  # a gather on the host per batch, then a copy (also on the CPU, to test it)
            self.images = host_images
            self.labels = host_labels

    @property
    def steps_per_epoch(self) -> int:
        return len(self._batch_bounds())

    def _batch_bounds(self) -> list[tuple[int, int]]:
        return batch_bounds(self.n, self.batch_size, self.world_size)

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * EPOCH_SEED_STRIDE + epoch)
        return torch.randperm(self.n, generator=g)

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images uint8 [b,C,H,W], labels int64 [b]) on the device, this rank's share."""
        perm = self.permutation(epoch)
        if self.resident:
            # From pinned memory without blocking: a pageable copy would make the host wait.
            perm = (perm.pin_memory() if self.pin else perm).to(self.device, non_blocking=True)
        for start, end in self._batch_bounds()[start_step:]:
            idx = perm[start:end][self.rank::self.world_size]
            if self.resident:
                yield self.images[idx], self.labels[idx]
            else:
                x, y = self.images[idx], self.labels[idx]
                if self.pin:
                    x, y = x.pin_memory(), y.pin_memory()
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def eval_batches(images: np.ndarray, labels: np.ndarray | None, batch_size: int,
                 device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Sequential batches for evaluation and prediction (every image once, in order)."""
    for start in range(0, len(images), batch_size):
        # A copy: the cache is read-only (memory-mapped).
        x = torch.from_numpy(np.array(images[start:start + batch_size])).to(device)
        y = None
        if labels is not None:
            y = torch.from_numpy(np.asarray(labels[start:start + batch_size], dtype=np.int64)).to(device)
        yield x, y
