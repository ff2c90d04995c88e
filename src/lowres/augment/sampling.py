"""Random draws for a whole batch at once, all taken from one `torch.Generator`.

Every draw is made on the generator's device, so the same seed gives the same batch of
parameters wherever it runs, and restoring the generator state replays the same draws.
Each op draws for every sample, even those that end up unchanged, so how much randomness
a batch consumes depends only on the batch size and the spec.
"""
from __future__ import annotations

import torch
from torch import Tensor

from lowres.augment.base import constant


def uniform(generator: torch.Generator, n: int, low: float, high: float) -> Tensor:
    """[n] float32 uniform in [low, high)."""
    u = torch.rand(n, generator=generator, device=generator.device)
    return u * (high - low) + low


def coin(generator: torch.Generator, n: int, p: float) -> Tensor:
    """[n] bool, each True with probability p."""
    return torch.rand(n, generator=generator, device=generator.device) < p


def integers(generator: torch.Generator, n: int, low: int, high: int) -> Tensor:
    """[n] int64 uniform in low..high-1."""
    return torch.randint(low, high, (n,), generator=generator, device=generator.device)


def categorical(generator: torch.Generator, n: int, weights: tuple[float, ...] | list[float]) -> Tensor:
    """[n] int64 indices drawn with the given (unnormalised) weights: one uniform draw per
    sample against the cumulative weights (no multinomial: fixed shapes, no checks that
    read device values)."""
    total = float(sum(weights))
    edges, running = [], 0.0
    for w in list(weights)[:-1]:
        running += float(w)
        edges.append(running / total)
    u = torch.rand(n, generator=generator, device=generator.device)
    if not edges:
        return torch.zeros(n, dtype=torch.long, device=generator.device)
    bounds = constant(tuple(edges), generator.device, torch.float64)
    # Index k where edges[k-1] <= u < edges[k]; zero-weight entries have empty intervals.
    return (u.to(torch.float64).unsqueeze(1) >= bounds).sum(1)


def normal(generator: torch.Generator, shape: tuple[int, ...]) -> Tensor:
    return torch.randn(shape, generator=generator, device=generator.device)


def beta(generator: torch.Generator, n: int, alpha: float) -> Tensor:
    """[n] draws from Beta(alpha, alpha) via two Gamma variables."""
    concentration = torch.full((2, n), float(alpha), device=generator.device)
    gammas = torch._standard_gamma(concentration, generator=generator)
    total = gammas.sum(0)
    # Both gammas can underflow to 0 for tiny alpha; call that an even split.
    return torch.where(total > 0, gammas[0] / total.clamp(min=1e-30), torch.full_like(total, 0.5))


def dirichlet(generator: torch.Generator, n: int, alpha: float, k: int) -> Tensor:
    """[n, k] rows from a symmetric Dirichlet(alpha, ..., alpha)."""
    concentration = torch.full((n, k), float(alpha), device=generator.device)
    return torch._sample_dirichlet(concentration, generator=generator)
