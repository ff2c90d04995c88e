"""`lowres augment-preview CONFIG`: look at what a stage trains on."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from lowres import config as config_mod
from lowres.augment import build_pipeline
from lowres.augment.preview import save_preview_grid
from lowres.data.prepare import prepare
from lowres.errors import LowresError


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
                             titles=["original"] + [f"{name} draw {i + 1}" for i in range(draws)])
    print(f"lowres: wrote {path} ({n} images x {draws} draws of {name}'s pipeline)", file=log)
    return Path(path)
