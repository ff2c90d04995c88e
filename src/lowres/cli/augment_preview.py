"""`lowres augment-preview CONFIG`: look at what a stage trains on, as a PNG grid:
originals in the first column, then one column per augmented draw; every small image is
upscaled by nearest neighbour so the pixels of a 40x40 image stay visible.

One idea, a picture of a stage's augmentation: the command (config, data, pipeline) and
the drawing of the grid. The augmentation package itself knows nothing of pictures.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from lowres import config as config_mod
from lowres.augment import build_pipeline
from lowres.data.prepare import prepare
from lowres.errors import LowresError

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
    from lowres.track.plots import figure, save_figure  # plotting is only needed here

    if titles is not None and len(titles) != len(afters):
        raise ValueError(f"{len(titles)} titles for {len(afters)} draws: the original's "
                         f"column is titled already")
    columns = [_as_rgb_uint8(before)] + [_as_rgb_uint8(a) for a in afters]
    names = ["original"] + list(titles if titles is not None
                                else [f"draw {i + 1}" for i in range(len(afters))])
    rows, cols = before.shape[0], len(columns)
    fig = figure((1.3 * cols, 1.3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(columns[c][r].numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(names[c], fontsize=8)
    fig.tight_layout()
    return save_figure(fig, Path(path))


def augment_preview(config_path: str, overrides: list[str], out: str | Path, stage: int = 0,
                    n: int = 8, draws: int = 4, log=None) -> Path:
    log = log or sys.stdout
    cfg = config_mod.load(config_path, overrides)
    if not 0 <= stage < len(cfg.stages):
        raise LowresError(f"--stage {stage}: the config has stages 0..{len(cfg.stages) - 1}")
    data = prepare(cfg.data, cfg.seed)
    n = max(1, min(n, len(data.train_labels)))
    images = torch.from_numpy(data.train_images[:n])
    labels = torch.from_numpy(data.train_labels[:n])
    pipeline = build_pipeline(cfg.stages[stage].augment, data.mean, data.std, data.num_classes)
    gen = torch.Generator().manual_seed(cfg.seed)
    afters = [pipeline.augment(images, labels, gen)[0] for _ in range(draws)]
    name = cfg.stages[stage].name or f"stage{stage + 1}"
    path = save_preview_grid(images, afters, Path(out),
                             titles=[f"{name} draw {i + 1}" for i in range(draws)])
    print(f"lowres: wrote {path} ({n} images x {draws} draws of {name}'s pipeline)", file=log)
    return Path(path)
