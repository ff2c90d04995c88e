"""Batched photometric operations with one parameter per sample.

Every function takes float images [B, C, H, W] with values in 0..1 (C = 1 or 3) and
per-sample parameters as tensors of shape [B]; it returns a new tensor and never modifies
its input, except where it takes `inplace=True`: then it writes the result into `images`
(which must be contiguous) and returns it, with the same numbers. The semantics are
those of `torchvision.transforms.v2.functional` on *float* inputs (the tests compare both
image by image); torchvision's uint8 path rounds or floors at different places and differs
by about one intensity level.
"""
from __future__ import annotations

import torch
from torch import Tensor

from lowres.augment.base import masking_mode

# ITU-R 601-2 luma weights, as PIL and torchvision use them.
_LUMA = (0.2989, 0.587, 0.114)


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """A [B] parameter as [B, 1, 1, 1] in the dtype of `like`, ready to broadcast."""
    return values.to(dtype=like.dtype, device=like.device).reshape(-1, 1, 1, 1)


def luminance(images: Tensor) -> Tensor:
    """Grey level [B, 1, H, W]; single-channel images are returned as they are."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(dim=1)
    return (r * _LUMA[0] + g * _LUMA[1] + b * _LUMA[2]).unsqueeze(1)


def grayscale(images: Tensor) -> Tensor:
    """Grey version with the input's channel count (RandomGrayscale keeps 3 channels)."""
    return luminance(images).expand_as(images).clone()


def _blend(images: Tensor, other: Tensor, ratio: Tensor, inplace: bool = False) -> Tensor:
    """ratio * images + (1 - ratio) * other, clamped to 0..1; `ratio` is [B]."""
    r = per_sample(ratio, images)
    scaled = images.mul_(r) if inplace else images * r
    return scaled.add_(other * (1.0 - r)).clamp_(0.0, 1.0)


def adjust_brightness(images: Tensor, factor: Tensor, inplace: bool = False) -> Tensor:
    f = per_sample(factor, images)
    return (images.mul_(f) if inplace else images * f).clamp_(0.0, 1.0)


def adjust_saturation(images: Tensor, factor: Tensor, inplace: bool = False) -> Tensor:
    if images.shape[1] == 1:  # no colour to change (torchvision follows PIL here)
        return images if inplace else images.clone()
    return _blend(images, luminance(images), factor, inplace)


def adjust_contrast(images: Tensor, factor: Tensor, inplace: bool = False) -> Tensor:
    # Blend towards the mean grey level of each image.
    mean = luminance(images).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(images, mean, factor, inplace)


def adjust_sharpness(images: Tensor, factor: Tensor, inplace: bool = False) -> Tensor:
    """Blend with a smoothed copy; the one-pixel border is left unchanged (as PIL does)."""
    _, c, h, w = images.shape
    if h <= 2 or w <= 2:
        return images if inplace else images.clone()
    # PIL's smoothing kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 on the interior: a 3x3
    # box sum from shifted views (two 1-D passes) plus 4 x the centre.
    rows = images[:, :, :, :-2] + images[:, :, :, 1:-1]
    rows += images[:, :, :, 2:]
    box = rows[:, :, :-2] + rows[:, :, 1:-1]
    box += rows[:, :, 2:]
    centre = images[:, :, 1:-1, 1:-1]
    # add_ with alpha 4: 4 * centre is exact (a power of two), so the same sums as adding
    # a separate centre * 4, without that temporary.
    smooth = box.add_(centre, alpha=4.0).mul_(1.0 / 13.0)
    r = per_sample(factor, images)
    blended = smooth.mul_(1.0 - r).add_(centre * r)
    out = images if inplace else images.clone()
    out[:, :, 1:-1, 1:-1] = blended
    return out.clamp_(0.0, 1.0)


def _rgb_to_hsv(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r, g, b = images.unbind(dim=1)
    value, _ = images.max(dim=1)
    low, _ = images.min(dim=1)
    spread = value - low
    flat = spread == 0
    # Grey pixels have no hue and no saturation; dividing by 1 there keeps them finite.
    saturation = spread / torch.where(value == 0, torch.ones_like(value), value)
    safe = torch.where(flat, torch.ones_like(spread), spread)
    hue = torch.where(
        value == r, (g - b) / safe,
        torch.where(value == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = torch.where(flat, torch.zeros_like(hue), hue)
    hue = torch.remainder(hue / 6.0, 1.0)
    return hue, saturation, value


def _hsv_to_rgb(hue: Tensor, saturation: Tensor, value: Tensor) -> Tensor:
    # Closed form: channel n gets v - v*s*clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6.
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + hue * 6.0, 6.0)
        weight = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
        channels.append(value - value * saturation * weight)
    return torch.stack(channels, dim=1).clamp_(0.0, 1.0)


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue by `shift` (fraction of a turn, -0.5..0.5) per sample."""
    if images.shape[1] == 1:
        return images.clone()
    hue, sat, val = _rgb_to_hsv(images)
    hue = torch.remainder(hue + shift.to(hue.dtype).reshape(-1, 1, 1), 1.0)
    return _hsv_to_rgb(hue, sat, val)


def posterize(images: Tensor, bits: Tensor, inplace: bool = False) -> Tensor:
    """Keep `bits` bits per channel: float path of torchvision (floor(x * 2^bits) / 2^bits)."""
    levels = per_sample(torch.pow(2.0, bits.to(torch.float32)), images)
    kept = torch.minimum(torch.floor(images * levels), levels - 1.0).clamp_(min=0.0)
    return torch.div(kept, levels, out=images) if inplace else kept.div_(levels)


def solarize(images: Tensor, threshold: Tensor, inplace: bool = False) -> Tensor:
    """Invert every value at or above `threshold` (0..1 units)."""
    # Bool masks (comparisons, torch.where) are several times slower on CPU than float
    # arithmetic: a 0/1 float mask from the sign of x - t (0 exactly when x == t), and
    # lerp, which returns its end points exactly for weights 0 and 1.
    invert = (images - per_sample(threshold, images)).sign_().add_(1.0).clamp_(max=1.0)
    if inplace:
        return images.lerp_(1.0 - images, invert)
    return torch.lerp(images, 1.0 - images, invert)


def autocontrast(images: Tensor, inplace: bool = False) -> Tensor:
    """Stretch each channel to the full range; flat channels are left as they are."""
    low = images.amin(dim=(2, 3), keepdim=True)
    high = images.amax(dim=(2, 3), keepdim=True)
    flat = high == low
    scale = torch.where(flat, torch.ones_like(high), high - low)
    low = torch.where(flat, torch.zeros_like(low), low)
    shifted = images.sub_(low) if inplace else images - low
    return shifted.div_(scale).clamp_(0.0, 1.0)


def to_uint8_levels(images: Tensor) -> Tensor:
    """0..1 floats to integer levels 0..255 the way torchvision converts float to uint8."""
    return (images * (256.0 - 1e-3)).to(torch.uint8)


def equalize(images: Tensor, inplace: bool = False) -> Tensor:
    """Histogram equalisation per channel with PIL's lookup table (on 256 levels).

    The float path of torchvision quantises to uint8 first, so the output is in k/255 steps.
    Channels whose pixels (apart from the most frequent top value) number fewer than 255
    are returned quantised but otherwise unchanged, as in PIL.
    """
    b, c, h, w = images.shape
    rows, n = b * c, h * w
    # The uint8 levels of `to_uint8_levels` (truncation of values in 0..255.999), as int32,
    # offset by 256 per channel: one flat histogram and one flat table lookup for all.
    offsets, identity = _equalize_constants(rows, images.device)
    # Clamped: a value outside 0..1 (e.g. noise from erasing, or a sample that the
    # "where" masking computes and then discards) must not reach another channel's counts.
    levels = (images * (256.0 - 1e-3)).to(torch.int32).clamp_(0, 255).reshape(rows, n)
    flat = levels.add_(offsets).reshape(-1)
    if masking_mode(images.device) == "subset":  # the CPU path: bincount is fastest there
        hist = torch.bincount(flat, minlength=rows * 256)
    else:  # CUDA's bincount reads the largest value on the host: a synchronisation
        index = flat.long()
        hist = torch.zeros(rows * 256, dtype=torch.int64, device=images.device)
        hist.scatter_add_(0, index, torch.ones_like(index))
    # The small table arithmetic below runs in floating point, cheaper than int64 division
    # on CPU and exact: every operand is an integer below 1.5 * H * W, and the floor of a
    # quotient a / s of such integers is exact when a relative gap of 1 / a (the least
    # distance of a non-integer quotient from the next integer, relative to it) exceeds
    # the rounding error: float32 up to 2^20 pixels per channel, float64 beyond.
    hist = hist.to(torch.float32 if n <= 1 << 20 else torch.float64).reshape(rows, 256)
    below = hist.cumsum(dim=1).sub_(hist)  # count below each level
    # PIL ignores the count of the highest level present in the channel (truncation is
    # monotone: the level of the largest value).
    top = (images.reshape(rows, n).amax(dim=1, keepdim=True) * (256.0 - 1e-3)).to(torch.int64)
    top_count = hist.gather(1, top.clamp_(0, 255))
    step = top_count.neg_().add_(n).div_(255.0).floor_()  # [B*C, 1]
    # Level k maps to (count below k + step // 2) // step.
    lut = below.add_(step.mul(0.5).floor_()).div_(step.clamp(min=1.0)).floor_().clamp_(0, 255)
    # Channels with step 0 keep their levels: an identity table (cheaper than choosing
    # per pixel afterwards).
    table = torch.where(step > 0, lut, identity).to(images.dtype).mul_(1.0 / 255.0)  # as torchvision
    if inplace:
        torch.index_select(table.reshape(-1), 0, flat, out=images.view(-1))
        return images
    return table.reshape(-1).index_select(0, flat).reshape(b, c, h, w)


_EQUALIZE: dict[tuple, tuple[Tensor, Tensor]] = {}


def _equalize_constants(rows: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Per-row offsets [rows, 1] (int32, 256 apart) and the identity table [256] (float32)
    of `equalize`, made once per (rows, device) (few sizes: subsets of one batch size)."""
    key = (rows, str(device))
    if key not in _EQUALIZE:
        if len(_EQUALIZE) > 4096:
            _EQUALIZE.clear()
        _EQUALIZE[key] = (
            torch.arange(0, rows * 256, 256, dtype=torch.int32, device=device).unsqueeze(1),
            torch.arange(256, dtype=torch.float32, device=device))
    return _EQUALIZE[key]
