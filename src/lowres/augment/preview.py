"""A PNG grid to look at augmentations: originals in the first column, then one column
per augmented draw; every small image is upscaled by nearest neighbour so the pixels of a
40x40 image stay visible."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

UPSCALE_TO = 160  # pixels on the longer side of each cell


def _as_rgb_uint8(images: Tensor) -> Tensor:
    """[N, C, H, W] uint8 or float 0..1 -> [N, H, W, 3] uint8 upscaled by an integer factor."""
    x = images.detach().cpu()
    if x.is_floating_point():
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    factor = max(1, UPSCALE_TO // max(x.shape[-2:]))
    x = x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    return x.permute(0, 2, 3, 1).contiguous()


def save_preview_grid(before: Tensor, afters: Sequence[Tensor], path: str | Path,
                      titles: Sequence[str] | None = None) -> Path:
    """Write the grid to `path` (PNG). `before`: uint8 [N, C, H, W]; `afters`: float 0..1
    tensors of the same shape, one per augmented draw; `titles` label the columns after
    'original'. Returns the path."""
    import matplotlib  # noqa: PLC0415 (plotting is only needed here)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    columns = [_as_rgb_uint8(before)] + [_as_rgb_uint8(a) for a in afters]
    names = ["original"] + list(titles if titles is not None
                                else [f"draw {i + 1}" for i in range(len(afters))])
    rows, cols = before.shape[0], len(columns)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(columns[c][r].numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(names[c], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
