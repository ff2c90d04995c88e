"""Batched blur and erasing with per-sample parameters (float images [B, C, H, W])."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import conv2d, pad


def gaussian_kernels(kernel_size: int, sigma: Tensor) -> Tensor:
    """One normalised 1-D Gaussian per sample, [B, k], on torchvision's sample points."""
    half_width = (kernel_size - 1) / (2.0 * 2.0 ** 0.5)
    points = torch.linspace(-half_width, half_width, steps=kernel_size, device=sigma.device)
    return torch.softmax(-(points / sigma.to(torch.float32).reshape(-1, 1)) ** 2, dim=1)


def gaussian_blur(images: Tensor, kernel_size: tuple[int, int], sigma: Tensor) -> Tensor:
    """Blur each sample with its own sigma [B] (same in x and y); kernel_size = (kx, ky),
    both odd. Borders are reflected, as in torchvision. The 2-D kernel is separable, so two
    1-D passes give torchvision's result up to float rounding."""
    b, c, h, w = images.shape
    kx, ky = kernel_size
    flat = images.reshape(1, b * c, h, w)  # one conv group per (sample, channel)
    flat = pad(flat, [kx // 2, kx // 2, ky // 2, ky // 2], mode="reflect")
    row = gaussian_kernels(kx, sigma).to(images.dtype).repeat_interleave(c, dim=0)
    col = gaussian_kernels(ky, sigma).to(images.dtype).repeat_interleave(c, dim=0)
    flat = conv2d(flat, row.reshape(b * c, 1, 1, kx), groups=b * c)
    flat = conv2d(flat, col.reshape(b * c, 1, ky, 1), groups=b * c)
    return flat.reshape(b, c, h, w)


def box_mask(height: int, width: int, top: Tensor, left: Tensor, box_h: Tensor,
             box_w: Tensor) -> Tensor:
    """[B, 1, H, W] bool, True inside each sample's rectangle (rows top..top+box_h-1)."""
    device = top.device
    rows = torch.arange(height, device=device).reshape(1, height)
    cols = torch.arange(width, device=device).reshape(1, width)
    top, left = top.reshape(-1, 1), left.reshape(-1, 1)
    in_rows = (rows >= top) & (rows < top + box_h.reshape(-1, 1))  # [B, H]
    in_cols = (cols >= left) & (cols < left + box_w.reshape(-1, 1))  # [B, W]
    return (in_rows.unsqueeze(2) & in_cols.unsqueeze(1)).unsqueeze(1)


def erase(images: Tensor, top: Tensor, left: Tensor, box_h: Tensor, box_w: Tensor,
          value: Tensor) -> Tensor:
    """Replace each sample's rectangle by `value` (broadcastable to [B, C, H, W]: a colour
    [C, 1, 1] / [B, C, 1, 1] or per-pixel noise [B, C, H, W]). Zero-size boxes erase nothing."""
    _, _, h, w = images.shape
    inside = box_mask(h, w, top, left, box_h, box_w)
    return torch.where(inside, value.to(images.dtype), images)
