"""Batched geometric operations with one parameter set per sample.

Images are float [B, C, H, W]; parameters are tensors with a leading batch dimension.
The affine family reproduces `torchvision.transforms.v2.functional.affine` / `rotate`
on tensors: same inverse matrix, same pixel-centre grid, `grid_sample` with
align_corners=False, and the same treatment of the fill colour.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch.nn.functional import grid_sample, pad

from lowres.augment.base import constant, masking_mode


def flip(images: Tensor, selected: Tensor, dim: int) -> Tensor:
    """Flip the selected samples ([B] bool) along `dim` (3: horizontal, 2: vertical)."""
    return torch.where(selected.reshape(-1, 1, 1, 1), images.flip(dim), images)


def inverse_affine_matrix(angle: Tensor, translate: Tensor, scale: Tensor, shear: Tensor,
                          center: Tensor) -> Tensor:
    """[B, 2, 3] matrices mapping output pixel coordinates back to input coordinates.

    Angles and shears are in degrees, translate and center in pixels relative to the image
    centre ([B, 2] each). Computed in float64 (torchvision computes it in Python floats).
    """
    f64 = torch.float64
    rot = torch.deg2rad(angle.to(f64))
    shear_x = torch.deg2rad(shear[:, 0].to(f64))
    shear_y = torch.deg2rad(shear[:, 1].to(f64))
    scale = scale.to(f64)
    cx, cy = center[:, 0].to(f64), center[:, 1].to(f64)
    tx, ty = translate[:, 0].to(f64), translate[:, 1].to(f64)
    # Forward map = rotation * scale * shear_y * shear_x about the centre, then a shift.
    a = torch.cos(rot - shear_y) / torch.cos(shear_y)
    b = -(a * torch.tan(shear_x) + torch.sin(rot))
    c = torch.sin(rot - shear_y) / torch.cos(shear_y)
    d = torch.cos(rot) - c * torch.tan(shear_x)
    # The rotation-shear part has determinant 1, so its inverse is the adjugate.
    m00, m01, m10, m11 = d / scale, -b / scale, -c / scale, a / scale
    m02 = cx - m00 * (cx + tx) - m01 * (cy + ty)
    m12 = cy - m10 * (cx + tx) - m11 * (cy + ty)
    return torch.stack([torch.stack([m00, m01, m02], 1), torch.stack([m10, m11, m12], 1)], 1)


def _pixel_centres(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """x [W] and y [H] of the pixel centres relative to the image centre (float32)."""
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=device)
    return xs, ys


def _normalised_theta(matrix: Tensor, height: int, width: int) -> Tensor:
    """[B, 3, 2] float32: pixel-centre coordinates (x, y, 1) @ theta = grid_sample's -1..1."""
    theta = matrix.to(torch.float32).transpose(1, 2)
    return theta / constant((0.5 * width, 0.5 * height), matrix.device)


def _sampling_grid(matrix: Tensor, height: int, width: int) -> Tensor:
    """grid_sample coordinates [B, H, W, 2] for inverse matrices [B, 2, 3] (float32)."""
    device = matrix.device
    xs, ys = _pixel_centres(height, width, device)
    base = torch.empty(height, width, 3, device=device)
    base[..., 0] = xs
    base[..., 1] = ys.unsqueeze(1)
    base[..., 2] = 1.0
    theta = _normalised_theta(matrix, height, width)
    grid = base.reshape(1, height * width, 3).expand(matrix.shape[0], -1, -1).bmm(theta)
    return grid.reshape(-1, height, width, 2)


def _nearest_source(matrix: Tensor, height: int, width: int) -> Tensor:
    """Flat index [B, H*W] of the input pixel that nearest-neighbour grid_sample reads for
    each output pixel, or H*W where it falls outside. Bit for bit the same float32 steps as
    `_sampling_grid` (a three-term bmm: x*t0 + y*t1, then + t2) and grid_sample
    (unnormalise as (g + 1) * size/2 - 0.5, round half to even), without either."""
    b = matrix.shape[0]
    xs, ys = _pixel_centres(height, width, matrix.device)
    theta = _normalised_theta(matrix, height, width).reshape(b, 3, 2, 1, 1)
    coordinates, inside = [], torch.ones((), dtype=torch.bool, device=matrix.device)
    for k, size in ((0, width), (1, height)):
        g = xs.reshape(1, 1, width) * theta[:, 0, k] + ys.reshape(1, height, 1) * theta[:, 1, k]
        g = g.add_(theta[:, 2, k]).add_(1.0).mul_(size * 0.5).sub_(0.5).round_()
        inside = inside & (g > -1.0) & (g < size)
        coordinates.append(g.to(torch.long))
    flat = coordinates[1].mul_(width).add_(coordinates[0])
    # Outside -> height * width (the appended fill pixel); arithmetic, as masked_fill and
    # where are slow on CPU.
    outside = height * width
    return flat.sub_(outside).mul_(inside).add_(outside).reshape(b, -1)


def nearest_sources(matrix: Tensor, height: int, width: int) -> Tensor:
    """`_nearest_source` for inverse matrices [B, 2, 3]: flat source index [B, H*W]."""
    b = matrix.shape[0]
    if masking_mode(matrix.device) == "subset" and b > 1:
        # Policies draw few distinct matrices (RandAugment: 10 per magnitude): compute
        # each once. (torch.unique has a data-dependent size: not on accelerators.)
        distinct, which = torch.unique(matrix.reshape(b, 6), dim=0, return_inverse=True)
        return _nearest_source(distinct.reshape(-1, 2, 3), height, width).index_select(0, which)
    return _nearest_source(matrix, height, width)


def warp_nearest_from(images: Tensor, source: Tensor, fill: Sequence[float] | None,
                      inplace: bool = False) -> Tensor:
    """Nearest-neighbour warp as one gather, given the flat source index [B, H*W] of every
    output pixel (H*W: outside); outside pixels read an appended fill pixel. `inplace`:
    the result overwrites `images` (contiguous)."""
    b, c, h, w = images.shape
    source = source.unsqueeze(1).expand(b, c, h * w)
    if fill is None:
        edge = images.new_zeros(b, c, 1)
    else:
        edge = constant(tuple(float(v) for v in fill), images.device, images.dtype)
        if edge.numel() != c:  # an RGB fill on grey images: use its average
            edge = edge.mean().expand(c)
        edge = edge.reshape(1, c, 1).expand(b, c, 1)
    flat = torch.cat([images.reshape(b, c, h * w), edge], 2)
    if inplace:
        torch.gather(flat, 2, source, out=images.view(b, c, h * w))
        return images
    return flat.gather(2, source).reshape(b, c, h, w)


def _warp_nearest(images: Tensor, matrix: Tensor, fill: Sequence[float] | None) -> Tensor:
    _, _, h, w = images.shape
    return warp_nearest_from(images, nearest_sources(matrix, h, w), fill)


def warp(images: Tensor, matrix: Tensor, interpolation: str = "nearest",
         fill: Sequence[float] | None = None) -> Tensor:
    """Resample every image through its own inverse matrix; outside pixels get `fill`."""
    b, c, h, w = images.shape
    if b == 0:
        return images.clone()
    if interpolation == "nearest":
        return _warp_nearest(images, matrix, fill)
    grid = _sampling_grid(matrix, h, w)
    if fill is None or all(v == 0 for v in fill):
        return grid_sample(images, grid, mode=interpolation, padding_mode="zeros",
                           align_corners=False)
    # A channel of ones tells, after sampling, how much of each pixel came from inside.
    ones = torch.ones(b, 1, h, w, dtype=images.dtype, device=images.device)
    out = grid_sample(torch.cat([images, ones], 1), grid, mode=interpolation,
                      padding_mode="zeros", align_corners=False)
    out, inside = out[:, :c], out[:, c:]
    colour = constant(tuple(float(v) for v in fill), images.device, images.dtype)
    if colour.numel() != c:  # an RGB fill on grey images: use its average
        colour = colour.mean().expand(c)
    colour = colour.reshape(1, -1, 1, 1).expand(b, c, h, w)
    return (out - colour) * inside + colour


def affine(images: Tensor, angle: Tensor, translate: Tensor, scale: Tensor, shear: Tensor,
           interpolation: str = "nearest", fill: Sequence[float] | None = None,
           center: Tensor | None = None) -> Tensor:
    """torchvision's `affine` per sample: angle [B] deg, translate [B, 2] px, scale [B],
    shear [B, 2] deg, center [B, 2] in pixels from the top-left (default: image centre)."""
    b, _, h, w = images.shape
    if center is None:
        offset = torch.zeros(b, 2, dtype=torch.float64, device=images.device)
    else:
        offset = center.to(torch.float64) - constant((w * 0.5, h * 0.5), images.device, torch.float64)
    matrix = inverse_affine_matrix(angle, translate, scale, shear, offset)
    return warp(images, matrix, interpolation, fill)


def translate(images: Tensor, shift: Tensor, interpolation: str = "nearest",
              fill: Sequence[float] | None = None) -> Tensor:
    """Shift every sample by shift [B, 2] = (dx, dy) pixels."""
    b = images.shape[0]
    zeros = torch.zeros(b, 2, dtype=torch.float64, device=images.device)
    ones = torch.ones(b, dtype=torch.float64, device=images.device)
    return warp(images, inverse_affine_matrix(zeros[:, 0], shift, ones, zeros, zeros),
                interpolation, fill)


def padded_crop(images: Tensor, top: Tensor, left: Tensor, size: tuple[int, int],
                padding: tuple[int, int, int, int], padding_mode: str = "constant",
                fill: float = 0.0) -> Tensor:
    """Pad the batch by (left, top, right, bottom), then cut a `size` window per sample
    whose corner in the padded image is (top[B], left[B])."""
    pad_left, pad_top, pad_right, pad_bottom = padding
    if any(padding):
        if padding_mode == "constant":
            images = pad(images, [pad_left, pad_right, pad_top, pad_bottom], value=fill)
        else:
            images = pad(images, [pad_left, pad_right, pad_top, pad_bottom], mode=padding_mode)
    out_h, out_w = size
    device = images.device
    rows = top.to(device).reshape(-1, 1) + torch.arange(out_h, device=device)  # [B, h]
    cols = left.to(device).reshape(-1, 1) + torch.arange(out_w, device=device)  # [B, w]
    batch = torch.arange(images.shape[0], device=device).reshape(-1, 1, 1)
    # Advanced indexing gives [B, h, w, C]; move channels back.
    window = images.permute(0, 2, 3, 1)[batch, rows.unsqueeze(2), cols.unsqueeze(1)]
    return window.permute(0, 3, 1, 2).contiguous()
