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


def _sampling_grid(matrix: Tensor, height: int, width: int) -> Tensor:
    """grid_sample coordinates [B, H, W, 2] for inverse matrices [B, 2, 3] (float32)."""
    device = matrix.device
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=device)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=device)
    base = torch.empty(height, width, 3, device=device)
    base[..., 0] = xs
    base[..., 1] = ys.unsqueeze(1)
    base[..., 2] = 1.0
    # Map pixel-centre coordinates through the matrix, then into grid_sample's -1..1 range.
    theta = matrix.to(torch.float32).transpose(1, 2)
    theta = theta / torch.tensor([0.5 * width, 0.5 * height], device=device)
    grid = base.reshape(1, height * width, 3).expand(matrix.shape[0], -1, -1).bmm(theta)
    return grid.reshape(-1, height, width, 2)


def warp(images: Tensor, matrix: Tensor, interpolation: str = "nearest",
         fill: Sequence[float] | None = None) -> Tensor:
    """Resample every image through its own inverse matrix; outside pixels get `fill`."""
    b, c, h, w = images.shape
    if b == 0:
        return images.clone()
    grid = _sampling_grid(matrix, h, w)
    if fill is None or all(v == 0 for v in fill):
        return grid_sample(images, grid, mode=interpolation, padding_mode="zeros",
                           align_corners=False)
    # A channel of ones tells, after sampling, how much of each pixel came from inside.
    ones = torch.ones(b, 1, h, w, dtype=images.dtype, device=images.device)
    out = grid_sample(torch.cat([images, ones], 1), grid, mode=interpolation,
                      padding_mode="zeros", align_corners=False)
    out, inside = out[:, :c], out[:, c:]
    colour = torch.tensor(list(fill), dtype=images.dtype, device=images.device)
    if colour.numel() != c:  # an RGB fill on grey images: use its average
        colour = colour.mean().expand(c)
    colour = colour.reshape(1, -1, 1, 1).expand(b, c, h, w)
    if interpolation == "nearest":
        return torch.where(inside < 0.5, colour, out)
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
        offset = center.to(torch.float64) - torch.tensor([w * 0.5, h * 0.5], dtype=torch.float64,
                                                         device=images.device)
    matrix = inverse_affine_matrix(angle, translate, scale, shear, offset)
    return warp(images, matrix, interpolation, fill)


def rotate(images: Tensor, angle: Tensor, interpolation: str = "nearest",
           fill: Sequence[float] | None = None) -> Tensor:
    """Counter-clockwise rotation about the centre by `angle` [B] degrees (no expand).

    torchvision short-cuts multiples of 90 degrees with rot90; the warp gives the same
    pixels there up to rounding of the sampling grid.
    """
    b = images.shape[0]
    zeros = torch.zeros(b, 2, dtype=torch.float64, device=images.device)
    ones = torch.ones(b, dtype=torch.float64, device=images.device)
    return warp(images, inverse_affine_matrix(-angle, zeros, ones, zeros, zeros), interpolation, fill)


def shear_from_corner(images: Tensor, factor: Tensor, axis: int, interpolation: str = "nearest",
                      fill: Sequence[float] | None = None) -> Tensor:
    """The auto-augment ShearX (axis 0) / ShearY (axis 1): x' = x + factor * y about the
    top-left corner; torchvision passes the angle atan(factor) in degrees."""
    b, _, h, w = images.shape
    degrees = torch.rad2deg(torch.atan(factor.to(torch.float64)))
    shear = torch.zeros(b, 2, dtype=torch.float64, device=images.device)
    shear[:, axis] = degrees
    zeros = torch.zeros(b, 2, dtype=torch.float64, device=images.device)
    corner = torch.tensor([[-w * 0.5, -h * 0.5]], dtype=torch.float64, device=images.device)
    matrix = inverse_affine_matrix(zeros[:, 0], zeros, torch.ones_like(degrees), shear,
                                   corner.expand(b, 2))
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
