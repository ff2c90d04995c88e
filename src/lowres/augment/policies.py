"""Automatic augmentation policies with an independent draw per sample: RandAugment,
TrivialAugmentWide and AugMix, using torchvision's op set and magnitude tables.

Each sample draws its own op (and sign, and for TrivialAugment/AugMix its own magnitude
bin); then each of the 14 op kinds runs once, on the subset of samples that drew it.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from lowres.augment import color_ops, geometry_ops, sampling
from lowres.augment.base import Op, apply_grouped_rounds, apply_masked, constant, masking_mode
from lowres.checks import Param, boolean, choice, colour, fail, integer, number

OP_NAMES = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
            "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
SIGNED = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
          "Contrast", "Sharpness"}
# AugMix without all_ops leaves out the ops that overlap with the test-time corruptions.
AUGMIX_PARTIAL = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize",
                  "Solarize", "AutoContrast", "Equalize")

# Largest magnitude per op and policy (the table runs from 0 to it over the bins); the
# translate entries are fractions of the image side, Posterize lists (most, fewest) bits.
_RANGES = {
    "randaugment": dict(shear=0.3, translate=150.0 / 331.0, rotate=30.0, enhance=0.9, bits=(8, 4)),
    "trivialaugment": dict(shear=0.99, translate=None, rotate=135.0, enhance=0.99, bits=(8, 2)),
    "augmix": dict(shear=0.3, translate=1.0 / 3.0, rotate=30.0, enhance=0.9, bits=(4, 0)),
}


def magnitude_table(policy: str, op: str, bins: int, height: int, width: int) -> Tensor | None:
    """Magnitude of every bin for one op (float32, like torchvision), or None (no magnitude)."""
    r = _RANGES[policy]
    if op in ("ShearX", "ShearY"):
        return torch.linspace(0.0, r["shear"], bins)
    if op in ("TranslateX", "TranslateY"):
        side = width if op == "TranslateX" else height
        top = 32.0 if r["translate"] is None else r["translate"] * side
        return torch.linspace(0.0, top, bins)
    if op == "Rotate":
        return torch.linspace(0.0, r["rotate"], bins)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return torch.linspace(0.0, r["enhance"], bins)
    if op == "Posterize":
        most, fewest = r["bits"]
        return (most - torch.arange(bins) / ((bins - 1) / (most - fewest))).round()
    if op == "Solarize":
        return torch.linspace(1.0, 0.0, bins)
    return None


def apply_op(name: str, images: Tensor, magnitude: Tensor, interpolation: str,
             fill: tuple[float, ...] | None, inplace: bool = False) -> Tensor:
    """One auto-augment op on a batch with a signed magnitude per sample ([n] float64).
    `inplace`: the photometric ops write their result into `images` (contiguous)."""
    if name == "Identity":
        return images
    if name == "ShearX":
        return geometry_ops.shear_from_corner(images, magnitude, 0, interpolation, fill)
    if name == "ShearY":
        return geometry_ops.shear_from_corner(images, magnitude, 1, interpolation, fill)
    if name in ("TranslateX", "TranslateY"):
        pixels = torch.trunc(magnitude)  # torchvision passes int(magnitude)
        zero = torch.zeros_like(pixels)
        shift = torch.stack([pixels, zero] if name == "TranslateX" else [zero, pixels], 1)
        return geometry_ops.translate(images, shift, interpolation, fill)
    if name == "Rotate":
        return geometry_ops.rotate(images, magnitude, interpolation, fill)
    if name == "Brightness":
        return color_ops.adjust_brightness(images, 1.0 + magnitude, inplace)
    if name == "Color":
        return color_ops.adjust_saturation(images, 1.0 + magnitude, inplace)
    if name == "Contrast":
        return color_ops.adjust_contrast(images, 1.0 + magnitude, inplace)
    if name == "Sharpness":
        return color_ops.adjust_sharpness(images, 1.0 + magnitude, inplace)
    if name == "Posterize":
        return color_ops.posterize(images, torch.trunc(magnitude), inplace)
    if name == "Solarize":
        return color_ops.solarize(images, magnitude, inplace)  # threshold in 0..1 units
    if name == "AutoContrast":
        return color_ops.autocontrast(images, inplace)
    if name == "Equalize":
        return color_ops.equalize(images, inplace)
    raise ValueError(f"unknown auto-augment op {name}")


GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def geometric_matrices(names: tuple[str, ...], op_index: Tensor, magnitude: Tensor,
                       height: int, width: int) -> Tensor:
    """Inverse affine matrices [n, 2, 3] for samples that each drew one of the GEOMETRIC
    ops (others get the identity): all five are special cases of torchvision's affine, so
    they share one warp."""
    def drew(name: str) -> Tensor:
        if name not in names:
            return torch.zeros_like(op_index, dtype=torch.bool)
        return op_index == names.index(name)

    f64 = torch.float64
    zero = torch.zeros_like(magnitude, dtype=f64)
    shear_deg = torch.rad2deg(torch.atan(magnitude.to(f64)))
    pixels = torch.trunc(magnitude.to(f64))  # torchvision passes int(magnitude)
    angle = torch.where(drew("Rotate"), -magnitude.to(f64), zero)  # rotate = affine(-angle)
    shear = torch.stack([torch.where(drew("ShearX"), shear_deg, zero),
                         torch.where(drew("ShearY"), shear_deg, zero)], 1)
    shift = torch.stack([torch.where(drew("TranslateX"), pixels, zero),
                         torch.where(drew("TranslateY"), pixels, zero)], 1)
    # Shears turn about the top-left corner (center=[0, 0]), the others about the centre.
    corner = (drew("ShearX") | drew("ShearY")).to(f64).unsqueeze(1)
    center = corner * constant((-width * 0.5, -height * 0.5), magnitude.device, f64)
    return geometry_ops.inverse_affine_matrix(angle, shift, torch.ones_like(zero), shear, center)


def _is_geometric(names: tuple[str, ...], op_index: Tensor) -> Tensor:
    """[n] bool: the sample drew one of the GEOMETRIC ops (a table lookup: no isin)."""
    flags = constant(tuple(float(n in GEOMETRIC) for n in names) + (0.0,), op_index.device)
    return flags[torch.where(op_index < 0, len(names), op_index)] > 0


# Source maps of the nearest-neighbour warp per (op names, image size, op, magnitude):
# policies draw few distinct geometric ops (RandAugment: 10 per magnitude, TrivialAugment:
# at most 310), so on CPU each is computed once and then looked up.
_SOURCES: dict[tuple, Tensor] = {}
_SOURCES_LIMIT = 1 << 22  # index entries kept (int64: 32 MB); the cache starts over beyond


def geometric_sources(names: tuple[str, ...], op_index: Tensor, magnitude: Tensor,
                      height: int, width: int) -> Tensor:
    """Flat source index [n, H*W] of the nearest-neighbour warp (see
    `geometry_ops.nearest_sources`) for samples that drew GEOMETRIC ops, from a cache keyed
    by (op, magnitude) read on the host: CPU only (subset mode)."""
    keys = list(zip(op_index.tolist(), magnitude.tolist()))
    slots: dict[tuple, int] = {}
    which = [slots.setdefault(k, len(slots)) for k in keys]
    prefix = (names, height, width)
    missing = [k for k in slots if prefix + k not in _SOURCES]
    if missing:
        if (len(_SOURCES) + len(missing)) * height * width > _SOURCES_LIMIT:
            _SOURCES.clear()
        ops = torch.tensor([k[0] for k in missing], dtype=op_index.dtype, device=op_index.device)
        mags = torch.tensor([k[1] for k in missing], dtype=magnitude.dtype, device=magnitude.device)
        matrix = geometric_matrices(names, ops, mags, height, width)
        for k, row in zip(missing, geometry_ops.nearest_sources(matrix, height, width)):
            _SOURCES[prefix + k] = row
    table = torch.stack([_SOURCES[prefix + k] for k in slots])
    return table.index_select(0, torch.tensor(which, device=table.device))


def _warp_geometric(x: Tensor, op_index: Tensor, magnitude: Tensor, names: tuple[str, ...],
                    interpolation: str, fill: tuple[float, ...] | None,
                    inplace: bool = False) -> Tensor:
    """The samples x that drew GEOMETRIC ops, each warped by its op (one warp for all)."""
    _, _, h, w = x.shape
    if interpolation == "nearest" and masking_mode(x.device) == "subset" and x.shape[0] > 0:
        return geometry_ops.warp_nearest_from(
            x, geometric_sources(names, op_index, magnitude, h, w), fill, inplace)
    return geometry_ops.warp(x, geometric_matrices(names, op_index, magnitude, h, w),
                             interpolation, fill)


def drawn_ops_round(op_index: Tensor, magnitude: Tensor, names: tuple[str, ...],
                    interpolation: str, fill: tuple[float, ...] | None,
                    mode: str) -> tuple[Tensor, dict[int, Callable[[Tensor, Any], Tensor]]]:
    """(group, fns) for `apply_grouped_rounds`: sample i gets names[op_index[i]] with
    magnitude[i]; op_index -1 means nothing. Every sample draws one op, so the op kinds
    touch disjoint samples and their order does not matter; the geometric kinds are done
    together in one warp. In subset mode the functions overwrite the views they get."""
    inplace = mode == "subset"
    group = torch.where(_is_geometric(names, op_index), -2, op_index)  # -2: one warp for all

    def pick(values: Tensor, idx) -> Tensor:  # index_select: cheaper than values[idx]
        return values if isinstance(idx, slice) else values.index_select(0, idx)

    fns = {-2: lambda x, idx: _warp_geometric(x, pick(op_index, idx), pick(magnitude, idx),
                                               names, interpolation, fill, inplace)}
    for k, name in enumerate(names):
        if name != "Identity" and name not in GEOMETRIC:
            fns[k] = lambda x, idx, name=name: apply_op(name, x, pick(magnitude, idx),
                                                        interpolation, fill, inplace)
    return group, fns


def apply_drawn_ops(images: Tensor, op_index: Tensor, magnitude: Tensor, names: tuple[str, ...],
                    interpolation: str, fill: tuple[float, ...] | None) -> Tensor:
    """Sample i gets names[op_index[i]] with magnitude[i]; op_index -1 means nothing (see
    `drawn_ops_round`). May overwrite `images`."""
    mode = masking_mode(images.device)
    return apply_grouped_rounds(
        images, [drawn_ops_round(op_index, magnitude, names, interpolation, fill, mode)], mode)


_TABLES: dict[tuple, tuple[Tensor, Tensor]] = {}


def _tables(policy: str, names: tuple[str, ...], bins: int, height: int, width: int,
            device: torch.device) -> tuple[Tensor, Tensor]:
    """Magnitudes [ops, bins] (float64) and signedness [ops] for a policy, cached."""
    key = (policy, names, bins, height, width, str(device))
    if key not in _TABLES:
        rows = []
        for name in names:
            table = magnitude_table(policy, name, bins, height, width)
            rows.append(torch.zeros(bins) if table is None else table.to(torch.float32))
        _TABLES[key] = (torch.stack(rows).to(device=device, dtype=torch.float64),
                        torch.tensor([n in SIGNED for n in names], device=device))
    return _TABLES[key]


def draw_magnitudes(generator: torch.Generator, policy: str, names: tuple[str, ...],
                    op_index: Tensor, bin_index: Tensor, bins: int, height: int,
                    width: int) -> Tensor:
    """Signed magnitude [B] (float64) for each sample's op and bin."""
    table, signed = _tables(policy, names, bins, height, width, generator.device)
    value = table[op_index.clamp(min=0), bin_index]
    negative = sampling.coin(generator, op_index.shape[0], 0.5) & signed[op_index.clamp(min=0)]
    return torch.where(negative, -value, value)


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
        bins = torch.full((b,), self.magnitude, dtype=torch.long, device=generator.device)
        rounds = []
        for _ in range(self.num_ops):
            op_index = sampling.integers(generator, b, 0, len(OP_NAMES))
            rounds.append((op_index, draw_magnitudes(generator, "randaugment", OP_NAMES, op_index,
                                                     bins, self.num_magnitude_bins, h, w)))
        return {"rounds": rounds}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        # One grouped pass over all rounds: in subset mode the batch stays sorted by the
        # ops of a round until the next (one gather per round instead of two).
        mode = masking_mode(images.device)
        rounds = [drawn_ops_round(_restrict(op_index, mask), mag, OP_NAMES, self.interpolation,
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
        op_index = sampling.integers(generator, b, 0, len(OP_NAMES))
        bins = sampling.integers(generator, b, 0, self.num_magnitude_bins)
        mag = draw_magnitudes(generator, "trivialaugment", OP_NAMES, op_index, bins,
                              self.num_magnitude_bins, h, w)
        return {"op_index": op_index, "mag": mag}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        return apply_drawn_ops(images, _restrict(drawn["op_index"], mask), drawn["mag"], OP_NAMES,
                               self.interpolation, self.fill)


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

    def _names(self) -> tuple[str, ...]:
        return tuple(n for n in OP_NAMES if n != "Identity") if self.all_ops else AUGMIX_PARTIAL

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        b, _, h, w = shape
        names = self._names()
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
                ops = sampling.integers(generator, b, 0, len(names))
                bins = sampling.integers(generator, b, 0, self.severity)
                mag.append(draw_magnitudes(generator, "augmix", names, ops, bins, self.LEVELS, h, w))
                op_index.append(torch.where(depth > step, ops, torch.full_like(ops, -1)))
        # [B, chains * steps], chain-major: every draw indexable by sample.
        return {"keep": keep, "chain_weights": chain_weights * (1.0 - keep).unsqueeze(1),
                "op_index": torch.stack(op_index, 1), "mag": torch.stack(mag, 1)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        names = self._names()
        steps = self.chain_depth if self.chain_depth > 0 else 3

        def augmix(x: Tensor, idx) -> Tensor:
            mixed = x * drawn["keep"][idx].reshape(-1, 1, 1, 1).to(x.dtype)
            weights = drawn["chain_weights"][idx]
            op_index, mag = drawn["op_index"][idx], drawn["mag"][idx]
            for i in range(self.mixture_width):
                chain = x.clone()  # apply_drawn_ops may overwrite its input
                for step in range(i * steps, (i + 1) * steps):
                    chain = apply_drawn_ops(chain, op_index[:, step], mag[:, step], names,
                                            self.interpolation, self.fill)
                mixed = mixed + chain * weights[:, i].reshape(-1, 1, 1, 1).to(x.dtype)
            return mixed.clamp_(0.0, 1.0)
        return augmix(images, slice(None)) if mask is None else apply_masked(images, mask, augmix)


POLICY_OPS: tuple[type[Op], ...] = (RandAugment, TrivialAugmentWide, AugMix)
