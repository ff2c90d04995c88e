"""Automatic augmentation policies with an independent draw per sample: RandAugment,
TrivialAugmentWide and AugMix, over the op set of `auto_ops` (torchvision's ops and
magnitude tables).

Each sample draws its own op (and sign, and for TrivialAugment/AugMix its own magnitude
bin); then each op runs once, on the samples that drew it (see `auto_apply`).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lowres.augment import sampling
from lowres.augment.auto_apply import apply_drawn_ops, draw_magnitudes, drawn_ops_round
from lowres.augment.auto_ops import ops_for
from lowres.augment.base import Op, apply_grouped_rounds, apply_masked, masking_mode
from lowres.basics.checks import Param, boolean, choice, colour, fail, integer, number

_INTERPOLATION = Param("nearest", choice("nearest", "bilinear"), "resampling for geometric ops")
_FILL = Param((0.0,), colour, "colour of uncovered pixels (0..1)")


class RandAugment(Op):
    name = "randaugment"
    PARAMS = {
        "num_ops": Param(2, integer(0, 16), "ops applied one after the other"),
        "magnitude": Param(9, integer(0), "magnitude bin (0 .. num_magnitude_bins - 1)"),
        "num_magnitude_bins": Param(31, integer(2), "number of magnitude bins"),
        "interpolation": _INTERPOLATION,
        "fill": _FILL,
    }

    @classmethod
    def check_combination(cls, key: str, params: dict[str, Any]) -> None:
        if params["magnitude"] >= params["num_magnitude_bins"]:
            raise fail(f"{key}.magnitude", f"must be below num_magnitude_bins "
                       f"({params['num_magnitude_bins']}), got {params['magnitude']}")

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        b, _, h, w = shape
        ops = ops_for(self.name)
        bins = torch.full((b,), self.magnitude, dtype=torch.long, device=generator.device)
        rounds = []
        for _ in range(self.num_ops):
            op_index = sampling.integers(generator, b, 0, len(ops))
            rounds.append((op_index, draw_magnitudes(generator, self.name, ops, op_index, bins,
                                                     self.num_magnitude_bins, h, w)))
        return {"rounds": rounds}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        # One grouped pass over all rounds: in subset mode the batch stays sorted by the
        # ops of a round until the next (one gather per round instead of two).
        mode = masking_mode(images.device)
        ops = ops_for(self.name)
        rounds = [drawn_ops_round(_restrict(op_index, mask), mag, ops, self.interpolation,
                                  self.fill, mode) for op_index, mag in drawn["rounds"]]
        return apply_grouped_rounds(images, rounds, mode)


def _restrict(op_index: Tensor, mask: Tensor | None) -> Tensor:
    """Samples outside `mask` draw no op (-1)."""
    return op_index if mask is None else torch.where(mask, op_index, torch.full_like(op_index, -1))


class TrivialAugmentWide(Op):
    name = "trivialaugment"
    PARAMS = {
        "num_magnitude_bins": Param(31, integer(2), "number of magnitude bins"),
        "interpolation": _INTERPOLATION,
        "fill": _FILL,
    }

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        b, _, h, w = shape
        ops = ops_for(self.name)
        op_index = sampling.integers(generator, b, 0, len(ops))
        bins = sampling.integers(generator, b, 0, self.num_magnitude_bins)
        mag = draw_magnitudes(generator, self.name, ops, op_index, bins,
                              self.num_magnitude_bins, h, w)
        return {"op_index": op_index, "mag": mag}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        return apply_drawn_ops(images, _restrict(drawn["op_index"], mask), drawn["mag"],
                               ops_for(self.name), self.interpolation, self.fill)


class AugMix(Op):
    """AugMix: `mixture_width` chains of 1-3 (or chain_depth) random ops, mixed with
    per-sample Dirichlet weights and blended with the original by a per-sample Beta."""
    name = "augmix"
    LEVELS = 10  # torchvision's _PARAMETER_MAX: severity picks among the first bins of 10
    PARAMS = {
        "severity": Param(3, integer(1, 10), "strength 1..10"),
        "mixture_width": Param(3, integer(1, 16), "number of augmentation chains"),
        "chain_depth": Param(-1, integer(-1, 16), "ops per chain; -1: 1 to 3 drawn per chain"),
        "alpha": Param(1.0, number(0.0, low_open=True), "Dirichlet / Beta concentration"),
        "all_ops": Param(True, boolean, "also use brightness, colour, contrast, sharpness"),
        "interpolation": Param("bilinear", choice("nearest", "bilinear"), "resampling"),
        "fill": _FILL,
    }

    @classmethod
    def check_combination(cls, key: str, params: dict[str, Any]) -> None:
        if params["chain_depth"] == 0:
            raise fail(f"{key}.chain_depth", "must be -1 (random 1..3) or at least 1")

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        b, _, h, w = shape
        ops = ops_for(self.name, self.all_ops)
        keep = sampling.beta(generator, b, self.alpha)  # weight of the original image
        chain_weights = sampling.dirichlet(generator, b, self.alpha, self.mixture_width)
        steps = self.chain_depth if self.chain_depth > 0 else 3
        op_index, mag = [], []
        for _ in range(self.mixture_width):
            if self.chain_depth > 0:
                depth = torch.full((b,), self.chain_depth, device=generator.device)
            else:
                depth = sampling.integers(generator, b, 1, 4)
            for step in range(steps):
                drew = sampling.integers(generator, b, 0, len(ops))
                bins = sampling.integers(generator, b, 0, self.severity)
                mag.append(draw_magnitudes(generator, self.name, ops, drew, bins, self.LEVELS, h, w))
                op_index.append(torch.where(depth > step, drew, torch.full_like(drew, -1)))
        # [B, chains * steps], chain-major: every draw indexable by sample.
        return {"keep": keep, "chain_weights": chain_weights * (1.0 - keep).unsqueeze(1),
                "op_index": torch.stack(op_index, 1), "mag": torch.stack(mag, 1)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        ops = ops_for(self.name, self.all_ops)
        steps = self.chain_depth if self.chain_depth > 0 else 3

        def augmix(x: Tensor, idx) -> Tensor:
            mixed = x * drawn["keep"][idx].reshape(-1, 1, 1, 1).to(x.dtype)
            weights = drawn["chain_weights"][idx]
            op_index, mag = drawn["op_index"][idx], drawn["mag"][idx]
            for i in range(self.mixture_width):
                chain = x.clone()  # apply_drawn_ops may overwrite its input
                for step in range(i * steps, (i + 1) * steps):
                    chain = apply_drawn_ops(chain, op_index[:, step], mag[:, step], ops,
                                            self.interpolation, self.fill)
                mixed = mixed + chain * weights[:, i].reshape(-1, 1, 1, 1).to(x.dtype)
            return mixed.clamp_(0.0, 1.0)
        return augmix(images, slice(None)) if mask is None else apply_masked(images, mask, augmix)
