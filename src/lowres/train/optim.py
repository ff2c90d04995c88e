"""Optimizers and learning-rate schedules.

Time-based schedules are pure functions of the step within the stage (`lr_at(step)`), so
resuming needs no scheduler state and the LR curve can be printed before training. The one
stateful schedule, ReduceLROnPlateau, keeps its counters in `state_dict()` and reacts to
`epoch_end(metrics)`. We set the LR on the optimizer ourselves every step, which is what
makes one interface for both kinds possible.
"""
from __future__ import annotations

import math

import torch

from lowres.config import OptimizerConfig, SchedulerConfig
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


def build_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas),
                                weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas),
                                 weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optimizer '{cfg.name}'")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class Schedule:
    """The LR of one stage: `lr_at(step)` every step, `epoch_end(metrics)` once per epoch.

    `epoch_end` returns True when the LR dropped for the next epoch (plateau reductions and
    step/multistep decays); those drops feed the stop rules.
    """

    DROPPING = ("step", "multistep", "plateau")

    def __init__(self, cfg: SchedulerConfig, base_lr: float, steps_per_epoch: int, epochs: int):
        self.cfg = cfg
        self.base_lr = base_lr
        self.spe = max(1, steps_per_epoch)
        self.epochs = epochs
        self.total = self.spe * epochs
        # plateau state
        self.current = base_lr
        self.best: float | None = None
        self.bad_epochs = 0
        self.cooldown_left = 0
        self.epochs_seen = 0

    # -- pure schedules
    def lr_at(self, step: int) -> float:
        c, base = self.cfg, self.base_lr
        epoch = step // self.spe
        if c.name == "plateau":
            return self.current
        if c.name == "constant":
            return base
        if c.name == "step":
            return base * c.gamma ** (epoch // max(1, c.step_epochs))
        if c.name == "multistep":
            return base * c.gamma ** sum(1 for m in c.milestones if epoch >= m)
        if c.name == "cosine":
            return self._warm_cosine(step, self.total)
        if c.name == "cosine_restarts":
            length = max(1, int(round(c.cycle_epochs * self.spe)))
            while step >= length:  # cycles grow by cycle_mult
                step -= length
                length = max(1, int(round(length * c.cycle_mult)))
            return self._warm_cosine(step, length)
        if c.name == "onecycle":
            return self._one_cycle(step)
        raise ConfigError(f"unknown scheduler '{c.name}'")

    def _warm_cosine(self, step: int, length: int) -> float:
        c, base = self.cfg, self.base_lr
        warm = int(round(c.warmup_epochs * self.spe))
        if step < warm:
            start = base * c.warmup_start
            return start + (base - start) * step / warm
        span = max(1, length - warm)
        t = min(1.0, (step - warm) / span)
        return c.min_lr + (base - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))

    def _one_cycle(self, step: int) -> float:
        c = self.cfg
        peak = self.base_lr
        start = peak / c.div_factor
        end = start / c.final_div_factor
        up = max(1, int(round(c.pct_start * self.total)) - 1)
        down = max(1, self.total - 1 - up)

        def cos_interp(a: float, b: float, t: float) -> float:
            return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

        if step <= up:
            return cos_interp(start, peak, step / up)
        return cos_interp(peak, end, (step - up) / down)

    @property
    def known_in_advance(self) -> bool:
        return self.cfg.name != "plateau"

    # -- epoch end
    def epoch_end(self, metrics: dict[str, float]) -> bool:
        """Update plateau state; True when the next epoch's LR is lower (an LR drop)."""
        self.epochs_seen += 1
        c = self.cfg
        if c.name in ("step", "multistep"):
            end = self.epochs_seen * self.spe
            return self.lr_at(end) < self.lr_at(end - 1) * (1 - 1e-9)
        if c.name != "plateau":
            return False
        value = metrics.get(c.monitor)
        if value is None or math.isnan(value):
            return False  # nothing to monitor (e.g. no validation split): keep the LR
        if self.best is None or self._better(value, self.best):
            self.best = value
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > c.patience:
            new = max(self.current * c.factor, c.min_lr)
            self.bad_epochs = 0
            self.cooldown_left = c.cooldown
            if self.current - new > 1e-8:  # torch's eps: tiny changes are ignored
                self.current = new
                return True
        return False

    def _better(self, value: float, best: float) -> bool:
        c = self.cfg
        mode = c.mode if c.mode != "auto" else ("max" if c.monitor.endswith("acc") else "min")
        if mode == "max":
            edge = best * (1 + c.threshold) if c.threshold_mode == "rel" else best + c.threshold
            return value > edge
        edge = best * (1 - c.threshold) if c.threshold_mode == "rel" else best - c.threshold
        return value < edge

    def state_dict(self) -> dict:
        return {"current": self.current, "best": self.best, "bad_epochs": self.bad_epochs,
                "cooldown_left": self.cooldown_left, "epochs_seen": self.epochs_seen}

    def load_state_dict(self, state: dict) -> None:
        self.current = state["current"]
        self.best = state["best"]
        self.bad_epochs = state["bad_epochs"]
        self.cooldown_left = state["cooldown_left"]
        self.epochs_seen = state["epochs_seen"]

    def epoch_lrs(self) -> list[float]:
        """The LR at the start of every epoch, where knowable in advance (for --dry-run)."""
        return [self.lr_at(e * self.spe) for e in range(self.epochs)]
