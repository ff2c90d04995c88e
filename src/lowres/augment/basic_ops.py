"""The everyday ops: flips, random choice, crop, translate, erasing, grayscale, blur and
colour jitter. Each draws its parameters for every sample from the generator, then runs
the batched function from *_ops.py."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lowres.augment import color_ops, filter_ops, geometry_ops, sampling
from lowres.augment.base import Op, apply_masked, combine, constant
from lowres.augment.spec import parse_op
from lowres.basics.checks import (Param, choice, colour, fail, interval, number, odd_size,
                                   optional, padding4, probability, size_pair)


class _Flip(Op):
    DIM = 3

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"selected": sampling.coin(generator, shape[0], self.p)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        return apply_masked(images, combine(drawn["selected"], mask), lambda x, _: x.flip(self.DIM))


class HFlip(_Flip):
    name = "hflip"
    PARAMS = {"p": Param(0.5, probability, "probability of flipping left-right")}
    DIM = 3


class VFlip(_Flip):
    name = "vflip"
    PARAMS = {"p": Param(0.5, probability, "probability of flipping upside down")}
    DIM = 2


def _check_sub_ops(key: str, value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise fail(key, f"expected a non-empty list of ops, got {value!r}")
    return [parse_op(item, f"{key}.{i}", inside_choice=True) for i, item in enumerate(value)]


def _check_weights(key: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise fail(key, f"expected a list of non-negative numbers, got {value!r}")
    return tuple(number(0.0)(f"{key}.{i}", v) for i, v in enumerate(value))


class RandomChoice(Op):
    """Each sample picks one sub-op (with optional weights) and only that one runs on it."""
    name = "random_choice"
    PARAMS = {
        "ops": Param(None, _check_sub_ops, "list of ops; each sample gets one of them"),
        "weights": Param(None, optional(_check_weights), "relative weights (default: equal)"),
    }

    @classmethod
    def check_combination(cls, key: str, params: dict[str, Any]) -> None:
        if params["ops"] is None:
            raise fail(f"{key}.ops", "random_choice needs a list of ops")
        weights = params["weights"]
        if weights is not None:
            if len(weights) != len(params["ops"]):
                raise fail(f"{key}.weights", f"expected {len(params['ops'])} weights (one per op), "
                           f"got {len(weights)}")
            if sum(weights) <= 0:
                raise fail(f"{key}.weights", "at least one weight must be positive")

    def __init__(self, context, **params: Any) -> None:
        super().__init__(context, **params)
        # The spec check hands over (class, params) pairs; build the sub-ops now.
        self.ops = [cls(context, **sub) for cls, sub in params["ops"]]
        self.params = dict(params, ops=self.ops)

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        # Every sub-op draws for the whole batch (fixed amounts of randomness, the same
        # numbers however the samples are then reached) and is applied where it was picked.
        weights = self.weights if self.weights is not None else (1.0,) * len(self.ops)
        return {"picked": sampling.categorical(generator, shape[0], weights),
                "ops": [op.draw(generator, shape) for op in self.ops]}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        for k, op in enumerate(self.ops):
            images = op.apply(images, drawn["ops"][k], combine(drawn["picked"] == k, mask))
        return images


class Crop(Op):
    """RandomCrop(size, padding, padding_mode): pad, then cut a random window per sample."""
    name = "crop"
    PARAMS = {
        "size": Param(None, size_pair, "output [height, width]; null keeps the input size"),
        "padding": Param(4, padding4, "pixels added on each side before cropping"),
        "padding_mode": Param("zeros", choice("zeros", "reflect", "edge"), "how to pad"),
        "fill": Param(0.0, number(0.0, 1.0), "pad value for padding_mode zeros (0..1)"),
    }

    def _geometry(self, shape: tuple[int, ...]) -> tuple[tuple[int, int], tuple[int, int]]:
        h, w = shape[-2:]
        out_h, out_w = self.size if self.size is not None else (h, w)
        left, top, right, bottom = self.padding
        padded_h, padded_w = h + top + bottom, w + left + right
        if padded_h < out_h or padded_w < out_w:
            raise ValueError(f"crop size {(out_h, out_w)} exceeds the padded image {(padded_h, padded_w)}")
        return (out_h, out_w), (padded_h, padded_w)

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        (out_h, out_w), (padded_h, padded_w) = self._geometry(shape)
        return {"rows": sampling.integers(generator, shape[0], 0, padded_h - out_h + 1),
                "cols": sampling.integers(generator, shape[0], 0, padded_w - out_w + 1)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        size, _ = self._geometry(tuple(images.shape))
        mode = {"zeros": "constant", "reflect": "reflect", "edge": "replicate"}[self.padding_mode]

        def crop(x: Tensor, idx) -> Tensor:
            return geometry_ops.padded_crop(x, drawn["rows"][idx], drawn["cols"][idx], size,
                                            self.padding, mode, self.fill)
        if mask is None:
            return crop(images, slice(None))
        if size != tuple(images.shape[-2:]):
            raise ValueError("a crop that changes the image size cannot be applied to some "
                             "samples only (e.g. inside random_choice)")
        return apply_masked(images, mask, crop)


class Translate(Op):
    """Shift by a whole number of pixels, up to fraction * size (as RandomAffine's
    translate) or up to `pixels`; uncovered pixels get `fill`."""
    name = "translate"
    PARAMS = {
        "p": Param(1.0, probability, "probability of shifting a sample"),
        "fraction": Param(None, optional(interval(0.0, 1.0, from_number=lambda x: (x, x))),
                          "largest shift as a fraction of [width, height]"),
        "pixels": Param(None, optional(interval(0.0, None, from_number=lambda x: (x, x))),
                        "largest shift in pixels [x, y]"),
        "fill": Param((0.0,), colour, "colour of the uncovered area (0..1)"),
    }

    @classmethod
    def check_combination(cls, key: str, params: dict[str, Any]) -> None:
        if (params["fraction"] is None) == (params["pixels"] is None):
            raise fail(f"{key}.fraction", "give exactly one of 'fraction' and 'pixels'")

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        b, _, h, w = shape
        if self.fraction is not None:
            max_x, max_y = self.fraction[0] * w, self.fraction[1] * h
        else:
            max_x, max_y = self.pixels
        dx = torch.round(sampling.uniform(generator, b, -max_x, max_x))
        dy = torch.round(sampling.uniform(generator, b, -max_y, max_y))
        return {"selected": sampling.coin(generator, b, self.p), "shift": torch.stack([dx, dy], 1)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        shift = drawn["shift"]
        return apply_masked(images, combine(drawn["selected"], mask), lambda x, idx: (
            geometry_ops.translate(x, shift[idx], "nearest", self.fill)))


class Erasing(Op):
    """RandomErasing: a rectangle of `scale` x area with aspect ratio in `ratio` (drawn
    log-uniformly), up to 10 tries per sample to fit, as torchvision does."""
    name = "erasing"
    PARAMS = {
        "p": Param(0.5, probability, "probability of erasing a sample"),
        "scale": Param((0.02, 0.33), interval(0.0, 1.0), "area fraction range"),
        "ratio": Param((0.3, 3.3), interval(1e-6, None), "aspect ratio (height / width) range"),
        "value": Param("zeros", choice("zeros", "random", "mean"),
                       "zeros, random (per-pixel normal noise) or mean (the dataset mean colour)"),
    }
    ATTEMPTS = 10

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        b, c, h, w = shape
        n = b * self.ATTEMPTS
        area = sampling.uniform(generator, n, *self.scale) * (h * w)
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(sampling.uniform(generator, n, log_lo, log_hi))
        box_h = torch.round(torch.sqrt(area * aspect)).reshape(b, -1)
        box_w = torch.round(torch.sqrt(area / aspect)).reshape(b, -1)
        fits = (box_h < h) & (box_w < w)
        # The first attempt that fits; samples where none fits are left alone.
        first = torch.argmax(fits.to(torch.int8), dim=1, keepdim=True)
        found = fits.any(dim=1)
        box_h = box_h.gather(1, first).squeeze(1).long()
        box_w = box_w.gather(1, first).squeeze(1).long()
        top = (sampling.uniform(generator, b, 0.0, 1.0) * (h - box_h + 1)).long().clamp(max=h - 1)
        left = (sampling.uniform(generator, b, 0.0, 1.0) * (w - box_w + 1)).long().clamp(max=w - 1)
        drawn = {"selected": sampling.coin(generator, b, self.p) & found, "top": top,
                 "left": left, "box_h": box_h, "box_w": box_w}
        if self.value == "random":
            drawn["noise"] = sampling.normal(generator, (b, c, h, w))
        return drawn

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        _, c, h, w = images.shape
        selected = combine(drawn["selected"], mask)
        # Unselected samples get an empty box: no masking by sample needed.
        box_h = drawn["box_h"] * selected
        top, left, box_w = drawn["top"], drawn["left"], drawn["box_w"]
        if self.value == "random":
            value = drawn["noise"]
        elif self.value == "mean":
            mean = constant(self.context.mean, images.device, images.dtype)
            value = (mean if mean.numel() == c else mean.mean().expand(c)).reshape(1, c, 1, 1)
        else:  # zeros: multiply by a 0/1 mask in place, the cheapest form on CPU
            return images.mul_(filter_ops.box_keep(h, w, top, left, box_h, box_w, images.dtype))
        return filter_ops.erase(images, top, left, box_h, box_w, value)


class Grayscale(Op):
    name = "grayscale"
    PARAMS = {"p": Param(0.1, probability, "probability of turning a sample grey")}

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"selected": sampling.coin(generator, shape[0], self.p)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        return apply_masked(images, combine(drawn["selected"], mask),
                            lambda x, _: color_ops.grayscale(x))


class GaussianBlur(Op):
    name = "gaussian_blur"
    PARAMS = {
        "p": Param(1.0, probability, "probability of blurring a sample"),
        "kernel_size": Param((3, 3), odd_size, "odd kernel size, or [kx, ky]"),
        "sigma": Param((0.1, 2.0), interval(1e-6, None, from_number=lambda x: (x, x)),
                       "standard deviation range, drawn per sample"),
    }

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        sigma = sampling.uniform(generator, shape[0], *self.sigma)
        return {"sigma": sigma, "selected": sampling.coin(generator, shape[0], self.p)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        sigma = drawn["sigma"]
        return apply_masked(images, combine(drawn["selected"], mask), lambda x, idx: (
            filter_ops.gaussian_blur(x, self.kernel_size, sigma[idx])))


def _jitter_range(centre: float, low: float | None):
    """ColorJitter's 'x or [min, max]' argument: x means [centre - x, centre + x]."""
    def widen(x: float) -> tuple[float, float]:
        lo = centre - x
        return (max(lo, low) if low is not None else lo, centre + x)
    return widen


class ColorJitter(Op):
    """Brightness, contrast, saturation and hue factors drawn per sample, applied in an
    order drawn per sample (torchvision draws one order per call, i.e. per image)."""
    name = "color_jitter"
    PARAMS = {
        "p": Param(1.0, probability, "probability of jittering a sample"),
        "brightness": Param((1.0, 1.0), interval(0.0, None, from_number=_jitter_range(1.0, 0.0)), ""),
        "contrast": Param((1.0, 1.0), interval(0.0, None, from_number=_jitter_range(1.0, 0.0)), ""),
        "saturation": Param((1.0, 1.0), interval(0.0, None, from_number=_jitter_range(1.0, 0.0)), ""),
        "hue": Param((0.0, 0.0), interval(-0.5, 0.5, from_number=_jitter_range(0.0, None)), ""),
    }
    FUNCTIONS = (color_ops.adjust_brightness, color_ops.adjust_contrast,
                 color_ops.adjust_saturation, color_ops.adjust_hue)

    RANGES = ("brightness", "contrast", "saturation", "hue")

    def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        b = shape[0]
        factors = [sampling.uniform(generator, b, *getattr(self, k)) for k in self.RANGES]
        order = torch.argsort(sampling.uniform(generator, b * 4, 0.0, 1.0).reshape(b, 4), dim=1)
        return {"factors": factors, "order": order, "selected": sampling.coin(generator, b, self.p)}

    def apply(self, images: Tensor, drawn: dict[str, Any], mask: Tensor | None = None) -> Tensor:
        neutral = (1.0, 1.0, 1.0, 0.0)
        active = [getattr(self, k) != (neutral[i], neutral[i]) for i, k in enumerate(self.RANGES)]
        return jitter(images, drawn["factors"], drawn["order"],
                      combine(drawn["selected"], mask), active)


def jitter(images: Tensor, factors: list[Tensor], order: Tensor, selected: Tensor,
           active: list[bool] = (True, True, True, True)) -> Tensor:
    """Colour jitter with explicit parameters: factors = [brightness, contrast, saturation,
    hue] ([B] each), order [B, 4] = each sample's permutation of those four, selected [B].
    Ops switched off in the config (`active` False) are skipped, as torchvision does."""
    for step in range(4):
        for k, fn in enumerate(ColorJitter.FUNCTIONS):
            if not active[k]:
                continue
            chosen = selected & (order[:, step] == k)
            images = apply_masked(images, chosen, lambda x, idx, fn=fn, f=factors[k]:
                                  fn(x, f[idx]))
    return images
