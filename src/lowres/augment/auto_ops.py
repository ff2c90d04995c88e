"""The op set of RandAugment, TrivialAugmentWide and AugMix: one row per op.

A row holds everything about its op: torchvision's name, whether a sample's magnitude gets
a random sign, the magnitude of every bin per policy, what the op does, and whether AugMix
without all_ops uses it. The policies derive their op lists, magnitude tables and dispatch
from `AUTO_OPS` (in this order: a sample's op is an index into it). To add an op: write its
batched function in color_ops.py or geometry_ops.py, then add a row here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from lowres.augment import color_ops

POLICIES = ("randaugment", "trivialaugment", "augmix")

# Magnitude of each bin: (bins, height, width) -> [bins] float32, torchvision's tables.
Magnitudes = Callable[[int, int, int], Tensor]
# A photometric op: (images, signed magnitude [n] float64, inplace) -> images. `inplace`:
# the op may write its result into `images` (a contiguous batch it owns).
PixelFn = Callable[[Tensor, Tensor, bool], Tensor]
# A geometric op: signed magnitude [n] float64 -> its part of torchvision's affine, as
# float64 [n] tensors under the keys of AFFINE_PARTS (the others stay 0). Geometric ops
# state parameters instead of warping, so that every geometric op of a batch shares one warp.
AffineFn = Callable[[Tensor], dict[str, Tensor]]
AFFINE_PARTS = ("angle", "shift_x", "shift_y", "shear_x", "shear_y")  # degrees and pixels


@dataclass(frozen=True)
class AutoOp:
    name: str
    magnitudes: dict[str, Magnitudes] | None = None  # per policy; None: no magnitude
    signed: bool = False  # each sample negates its magnitude with probability 1/2
    pixels: PixelFn | None = None
    affine: AffineFn | None = None
    about_corner: bool = False  # geometric ops: turn about the top-left corner, not the centre
    # AugMix: "always", "all_ops" (only with all_ops: the ops that overlap with the test-time
    # corruptions of the AugMix paper) or "never".
    augmix: str = "always"

    def __post_init__(self) -> None:
        # A row is checked when the table is built: a mistake fails at import, not mid-run.
        if self.magnitudes is not None and set(self.magnitudes) != set(POLICIES):
            raise ValueError(f"auto-augment op {self.name}: magnitudes for {POLICIES} needed, "
                             f"got {tuple(self.magnitudes)}")
        if self.pixels is not None and self.affine is not None:
            raise ValueError(f"auto-augment op {self.name}: pixels or affine, not both")
        if self.augmix not in ("always", "all_ops", "never"):
            raise ValueError(f"auto-augment op {self.name}: augmix must be always, all_ops or "
                             f"never, got {self.augmix!r}")

    @property
    def geometric(self) -> bool:
        return self.affine is not None

    def magnitude_table(self, policy: str, bins: int, height: int, width: int) -> Tensor | None:
        """Magnitude of every bin for `policy` (float32, like torchvision), or None."""
        return None if self.magnitudes is None else self.magnitudes[policy](bins, height, width)


def ops_for(policy: str, all_ops: bool = True) -> tuple[AutoOp, ...]:
    """The ops a policy draws from, in table order. RandAugment and TrivialAugmentWide use
    every row; AugMix leaves out Identity, and without `all_ops` the "all_ops" rows."""
    if policy != "augmix":
        return AUTO_OPS
    allowed = ("always", "all_ops") if all_ops else ("always",)
    return tuple(op for op in AUTO_OPS if op.augmix in allowed)


# Magnitude tables. linspace and the Posterize formula are torchvision's, so the float32
# values agree bit for bit (tests/augment/test_equivalence_policies.py).
def linear(top: float) -> Magnitudes:
    return lambda bins, height, width: torch.linspace(0.0, top, bins)


def of_width(fraction: float) -> Magnitudes:
    return lambda bins, height, width: torch.linspace(0.0, fraction * width, bins)


def of_height(fraction: float) -> Magnitudes:
    return lambda bins, height, width: torch.linspace(0.0, fraction * height, bins)


def bits(most: int, fewest: int) -> Magnitudes:
    """Posterize: from `most` bits kept down to `fewest`, rounded."""
    return lambda bins, height, width: (
        most - torch.arange(bins) / ((bins - 1) / (most - fewest))).round()


def solarize_thresholds(bins: int, height: int, width: int) -> Tensor:
    """Solarize: the threshold falls from 1 (nothing inverted) to 0, in 0..1 units."""
    return torch.linspace(1.0, 0.0, bins)


def per_policy(randaugment: Magnitudes, trivialaugment: Magnitudes,
               augmix: Magnitudes) -> dict[str, Magnitudes]:
    return {"randaugment": randaugment, "trivialaugment": trivialaugment, "augmix": augmix}


def _shear_degrees(magnitude: Tensor) -> Tensor:
    return torch.rad2deg(torch.atan(magnitude))  # torchvision shears by atan(magnitude)


def _enhance(fn: Callable[[Tensor, Tensor, bool], Tensor]) -> PixelFn:
    """PIL's ImageEnhance ops take a factor around 1: 1 + magnitude."""
    return lambda images, magnitude, inplace: fn(images, 1.0 + magnitude, inplace)


_SHEAR = per_policy(linear(0.3), linear(0.99), linear(0.3))
_ENHANCE = per_policy(linear(0.9), linear(0.99), linear(0.9))

AUTO_OPS: tuple[AutoOp, ...] = (
    AutoOp("Identity", augmix="never"),
    AutoOp("ShearX", _SHEAR, signed=True, about_corner=True,
           affine=lambda m: {"shear_x": _shear_degrees(m)}),
    AutoOp("ShearY", _SHEAR, signed=True, about_corner=True,
           affine=lambda m: {"shear_y": _shear_degrees(m)}),
    # torchvision passes int(magnitude) pixels; TrivialAugment shifts up to 32 pixels.
    AutoOp("TranslateX", per_policy(of_width(150.0 / 331.0), linear(32.0), of_width(1.0 / 3.0)),
           signed=True, affine=lambda m: {"shift_x": torch.trunc(m)}),
    AutoOp("TranslateY", per_policy(of_height(150.0 / 331.0), linear(32.0), of_height(1.0 / 3.0)),
           signed=True, affine=lambda m: {"shift_y": torch.trunc(m)}),
    # rotate(angle) is affine(-angle): counter-clockwise in image coordinates.
    AutoOp("Rotate", per_policy(linear(30.0), linear(135.0), linear(30.0)), signed=True,
           affine=lambda m: {"angle": -m}),
    AutoOp("Brightness", _ENHANCE, signed=True, augmix="all_ops",
           pixels=_enhance(color_ops.adjust_brightness)),
    AutoOp("Color", _ENHANCE, signed=True, augmix="all_ops",
           pixels=_enhance(color_ops.adjust_saturation)),
    AutoOp("Contrast", _ENHANCE, signed=True, augmix="all_ops",
           pixels=_enhance(color_ops.adjust_contrast)),
    AutoOp("Sharpness", _ENHANCE, signed=True, augmix="all_ops",
           pixels=_enhance(color_ops.adjust_sharpness)),
    AutoOp("Posterize", per_policy(bits(8, 4), bits(8, 2), bits(4, 0)),
           pixels=lambda x, m, inplace: color_ops.posterize(x, torch.trunc(m), inplace)),
    AutoOp("Solarize", per_policy(*[solarize_thresholds] * 3),
           pixels=color_ops.solarize),
    AutoOp("AutoContrast", pixels=lambda x, m, inplace: color_ops.autocontrast(x, inplace)),
    AutoOp("Equalize", pixels=lambda x, m, inplace: color_ops.equalize(x, inplace)),
)
