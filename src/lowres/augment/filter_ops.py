"""Batched blur and erasing with per-sample parameters (float images [B, C, H, W])."""
from __future__ import annotations

import torch
from torch import Tensor


def gaussian_kernels(kernel_size: int, sigma: Tensor) -> Tensor:
    """One normalised 1-D Gaussian per sample, [B, k], on torchvision's sample points."""
    half_width = (kernel_size - 1) / (2.0 * 2.0 ** 0.5)
    points = torch.linspace(-half_width, half_width, steps=kernel_size, device=sigma.device)
    return torch.softmax(-(points / sigma.to(torch.float32).reshape(-1, 1)) ** 2, dim=1)


def _blur_pass(x: Tensor, kernels: Tensor, dim: int) -> Tensor:
    """One 1-D pass along `dim` (2: rows, 3: columns) of [B, C, H, W] with a kernel per
    sample ([B, k], k odd) and reflected borders, as a weighted sum of shifted views.

    The shifts run over each sample flattened (long contiguous runs, per-sample weights
    broadcast: much faster than a grouped conv or short strided rows); the first and last
    k // 2 positions along `dim`, where a flat shift reads the wrong pixel, are then
    recomputed with their mirrored neighbours."""
    b, c, h, w = x.shape
    k = kernels.shape[1]
    r = k // 2
    size, step = x.shape[dim], (w if dim == 2 else 1)
    if r >= size:
        raise ValueError(f"blur kernel size {k} needs images larger than {size} pixels")
    weights = kernels.to(x.dtype).reshape(b, k, 1)
    flat = x.reshape(b, -1)
    n = flat.shape[1]
    out = flat * weights[:, r]
    for j in range(k):
        shift = (j - r) * step  # out[i] += weight_j * x[i + shift]
        if shift > 0:
            out[:, :n - shift] += flat[:, shift:] * weights[:, j]
        elif shift < 0:
            out[:, -shift:] += flat[:, :n + shift] * weights[:, j]
    out = out.reshape(b, c, h, w)
    edge_weights = weights.reshape(b, k, 1, 1)
    for i in list(range(r)) + list(range(max(r, size - r), size)):
        acc = x.select(dim, i) * edge_weights[:, r]
        for j in range(k):
            if j != r:
                source = abs(i + j - r)  # mirror about the first pixel ...
                if source >= size:  # ... or the last
                    source = 2 * (size - 1) - source
                acc += x.select(dim, source) * edge_weights[:, j]
        out.select(dim, i).copy_(acc)
    return out


def gaussian_blur(images: Tensor, kernel_size: tuple[int, int], sigma: Tensor) -> Tensor:
    """Blur each sample with its own sigma [B] (same in x and y); kernel_size = (kx, ky),
    both odd. Borders are reflected, as in torchvision. The 2-D kernel is separable, so two
    1-D passes give torchvision's result up to float rounding."""
    kx, ky = kernel_size
    out = _blur_pass(images, gaussian_kernels(kx, sigma), 3)
    return _blur_pass(out, gaussian_kernels(ky, sigma), 2)


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


def box_keep(height: int, width: int, top: Tensor, left: Tensor, box_h: Tensor,
             box_w: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """[B, 1, H, W] of `dtype`: 0 inside each sample's rectangle, 1 elsewhere (multiplying
    by it erases to zeros much faster than masked_fill with a broadcast mask on CPU)."""
    device = top.device
    b = top.shape[0]
    rows = torch.arange(height, device=device).reshape(1, height)
    cols = torch.arange(width, device=device).reshape(1, width)
    top, left = top.reshape(-1, 1), left.reshape(-1, 1)
    in_rows = (rows >= top) & (rows < top + box_h.reshape(-1, 1))  # [B, H]
    out_cols = ((cols < left) | (cols >= left + box_w.reshape(-1, 1))).to(dtype)  # [B, W]
    # Each mask row is either all ones (outside the box's rows) or the sample's column
    # pattern: pick it with one row gather from [B, 2, W] (faster than building the
    # outer product with broadcast arithmetic on CPU; the same 0/1 values).
    options = torch.cat([torch.ones(b, 1, width, dtype=dtype, device=device),
                         out_cols.unsqueeze(1)], 1).reshape(2 * b, width)
    which = in_rows.to(torch.long).add_(torch.arange(0, 2 * b, 2, device=device).unsqueeze(1))
    return options.index_select(0, which.reshape(-1)).reshape(b, 1, height, width)


def erase(images: Tensor, top: Tensor, left: Tensor, box_h: Tensor, box_w: Tensor,
          value: Tensor) -> Tensor:
    """Replace each sample's rectangle by `value` (broadcastable to [B, C, H, W]: a colour
    [C, 1, 1] / [B, C, 1, 1] or per-pixel noise [B, C, H, W]). Zero-size boxes erase nothing."""
    _, _, h, w = images.shape
    inside = box_mask(h, w, top, left, box_h, box_w)
    return torch.where(inside, value.to(images.dtype), images)
