"""Optimizers: the `OPTIMIZERS` table (name -> builder) and the parameter groups.

To add an optimizer: write a builder and add one `OPTIMIZERS` entry; the config's
optimizer.name choices and `lowres options` read the table. The LR schedules are in
schedules.py.
"""
from __future__ import annotations

from typing import Callable

import torch

from lowres.config import OptimizerConfig
from lowres.errors import ConfigError

NORM_TYPES = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm,
              torch.nn.LocalResponseNorm)


def param_groups(model: torch.nn.Module, cfg: OptimizerConfig) -> list[dict]:
    """One group, or two when weight decay is off for norm layers and biases."""
    if cfg.decay_norm_and_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad],
                 "weight_decay": cfg.weight_decay}]
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if isinstance(module, NORM_TYPES) or name.endswith("bias") or param.ndim <= 1:
                no_decay.append(param)
            else:
                decay.append(param)
    return [{"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# A builder takes the parameter groups (each with its weight decay) and the config.
Builder = Callable[[list[dict], OptimizerConfig], torch.optim.Optimizer]

OPTIMIZERS: dict[str, Builder] = {
    "sgd": lambda groups, c: torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                             weight_decay=c.weight_decay),
    "adam": lambda groups, c: torch.optim.Adam(groups, lr=c.lr, betas=tuple(c.betas),
                                               weight_decay=c.weight_decay),
    "adamw": lambda groups, c: torch.optim.AdamW(groups, lr=c.lr, betas=tuple(c.betas),
                                                 weight_decay=c.weight_decay),
}


def build_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    if cfg.name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer '{cfg.name}'")
    return OPTIMIZERS[cfg.name](param_groups(model, cfg), cfg)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
