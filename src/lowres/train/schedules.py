"""A stage's plan over time: the LR schedule (the `SCHEDULES` table, `Schedule`) and when
the stage stops (`StopRule`: max epochs, "N epochs after the K-th LR drop", early stopping).

Time-based schedules are pure functions of the step within the stage (`lr_at(step)`), so
resuming needs no scheduler state and the LR curve can be printed before training. A
stateful schedule (plateau) keeps its counters in `state_dict()` and moves the LR in
`epoch_end(metrics)`. We set the LR on the optimizer ourselves every step, which is what
makes one interface for both kinds possible.

To add a scheduler: write its LR rule and add one `SCHEDULES` entry. The config accepts
the name, `lowres options` lists it; a setting of its own goes in `SchedulerConfig`.
No torch here: the table is small and pure, and stays cheap to import.

Stop rules read the LR drops the schedule reports, which is why they live here. The seed's
rule ("wait for the accuracy jump after the first LR drop, train one more epoch, stop") is
`after_lr_drop: 1, extra_epochs: 2`: the epoch that follows the drop shows the jump, one
more epoch runs, then the stage ends. Both keep their few counters in checkpoints through
`SavedFields`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from lowres.errors import ConfigError

if TYPE_CHECKING:
    from lowres.config import SchedulerConfig, StageConfig


class SavedFields:
    SAVED: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.SAVED}

    def load_state_dict(self, state: dict) -> None:
        for name in self.SAVED:
            setattr(self, name, state[name])


@dataclass(frozen=True)
class Rule:
    """One scheduler. `lr(schedule, step)` is the LR at a step of the stage. `drops`: its LR
    falls in steps, and each fall counts as an LR drop for the stop rules (a continuous decay
    such as cosine does not). `epoch_end(schedule, metrics) -> dropped`, for a stateful rule
    whose LR reacts to the metrics; such an LR is not known in advance."""

    lr: Callable[[Schedule, int], float]
    drops: bool = False
    epoch_end: Callable[[Schedule, dict[str, float]], bool] | None = None


def _warm_cosine(s: Schedule, step: int, length: int) -> float:
    c, base = s.cfg, s.base_lr
    warm = int(round(c.warmup_epochs * s.spe))
    if step < warm:
        start = base * c.warmup_start
        return start + (base - start) * step / warm
    span = max(1, length - warm)
    t = min(1.0, (step - warm) / span)
    return c.min_lr + (base - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def _cosine_restarts(s: Schedule, step: int) -> float:
    length = max(1, int(round(s.cfg.cycle_epochs * s.spe)))
    while step >= length:  # cycles grow by cycle_mult
        step -= length
        length = max(1, int(round(length * s.cfg.cycle_mult)))
    return _warm_cosine(s, step, length)


def _one_cycle(s: Schedule, step: int) -> float:
    c = s.cfg
    peak = s.base_lr
    start = peak / c.div_factor
    end = start / c.final_div_factor
    up = max(1, int(round(c.pct_start * s.total)) - 1)
    down = max(1, s.total - 1 - up)

    def cos_interp(a: float, b: float, t: float) -> float:
        return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    if step <= up:
        return cos_interp(start, peak, step / up)
    return cos_interp(peak, end, (step - up) / down)


def _plateau_epoch_end(s: Schedule, metrics: dict[str, float]) -> bool:
    """torch's ReduceLROnPlateau, stepped once per epoch on `monitor`."""
    c = s.cfg
    value = metrics.get(c.monitor)
    if value is None or math.isnan(value):
        return False  # nothing to monitor (e.g. no validation split): keep the LR
    if s.best is None or _better(c, value, s.best):
        s.best = value
        s.bad_epochs = 0
    else:
        s.bad_epochs += 1
    if s.cooldown_left > 0:
        s.cooldown_left -= 1
        s.bad_epochs = 0
    if s.bad_epochs > c.patience:
        new = max(s.current * c.factor, c.min_lr)
        s.bad_epochs = 0
        s.cooldown_left = c.cooldown
        if s.current - new > 1e-8:  # torch's eps: tiny changes are ignored
            s.current = new
            return True
    return False


def _better(c: SchedulerConfig, value: float, best: float) -> bool:
    mode = c.mode if c.mode != "auto" else ("max" if c.monitor.endswith("acc") else "min")
    if mode == "max":
        edge = best * (1 + c.threshold) if c.threshold_mode == "rel" else best + c.threshold
        return value > edge
    edge = best * (1 - c.threshold) if c.threshold_mode == "rel" else best - c.threshold
    return value < edge


# name -> rule; the config's scheduler.name choices and `lowres options` read this table.
SCHEDULES: dict[str, Rule] = {
    "constant": Rule(lambda s, step: s.base_lr),
    "step": Rule(lambda s, step: s.base_lr * s.cfg.gamma ** (step // s.spe // max(1, s.cfg.step_epochs)),
                 drops=True),
    "multistep": Rule(lambda s, step: s.base_lr * s.cfg.gamma ** sum(
        1 for m in s.cfg.milestones if step // s.spe >= m), drops=True),
    "cosine": Rule(lambda s, step: _warm_cosine(s, step, s.total)),
    "cosine_restarts": Rule(_cosine_restarts),
    "plateau": Rule(lambda s, step: s.current, drops=True, epoch_end=_plateau_epoch_end),
    "onecycle": Rule(_one_cycle),
}


class Schedule(SavedFields):
    """The LR of one stage: `lr_at(step)` every step, `epoch_end(metrics)` once per epoch.

    `epoch_end` returns True when the LR dropped for the next epoch (plateau reductions and
    step/multistep decays); those drops feed the stop rules.
    """

    SAVED = ("current", "best", "bad_epochs", "cooldown_left", "epochs_seen")  # in checkpoints

    def __init__(self, cfg: SchedulerConfig, base_lr: float, steps_per_epoch: int, epochs: int):
        if cfg.name not in SCHEDULES:
            raise ConfigError(f"unknown scheduler '{cfg.name}'")
        self.cfg = cfg
        self.rule = SCHEDULES[cfg.name]
        self.base_lr = base_lr
        self.spe = max(1, steps_per_epoch)
        self.epochs = epochs
        self.total = self.spe * epochs
        # the state of a stateful rule (plateau)
        self.current = base_lr
        self.best: float | None = None
        self.bad_epochs = 0
        self.cooldown_left = 0
        self.epochs_seen = 0

    def lr_at(self, step: int) -> float:
        return self.rule.lr(self, step)

    @property
    def known_in_advance(self) -> bool:
        return self.rule.epoch_end is None

    def epoch_end(self, metrics: dict[str, float]) -> bool:
        """Update a stateful rule; True when the next epoch's LR is lower (an LR drop)."""
        self.epochs_seen += 1
        if self.rule.epoch_end is not None:
            return self.rule.epoch_end(self, metrics)
        if self.rule.drops:
            end = self.epochs_seen * self.spe
            return self.lr_at(end) < self.lr_at(end - 1) * (1 - 1e-9)
        return False

    def epoch_lrs(self) -> list[float]:
        """The LR at the start of every epoch, where knowable in advance (for --dry-run)."""
        return [self.lr_at(e * self.spe) for e in range(self.epochs)]


class StopRule(SavedFields):
    SAVED = ("lr_drops", "epochs_since_kth_drop", "best", "epochs_since_best")  # in checkpoints

    def __init__(self, stage: StageConfig):
        self.stage = stage
        self.lr_drops = 0
        self.epochs_since_kth_drop: int | None = None
        self.best: float | None = None
        self.epochs_since_best = 0

    def update(self, stage_epoch: int, lr_dropped: bool, val_acc: float | None) -> str | None:
        """Record one finished epoch; the reason to stop the stage now, or None."""
        rule = self.stage.stop
        if val_acc is not None and val_acc == val_acc:  # not NaN
            if self.best is None or val_acc > self.best:
                self.best = val_acc
                self.epochs_since_best = 0
            else:
                self.epochs_since_best += 1
        if self.epochs_since_kth_drop is not None:
            self.epochs_since_kth_drop += 1
        if lr_dropped:
            self.lr_drops += 1
            if rule.after_lr_drop is not None and self.lr_drops == rule.after_lr_drop:
                self.epochs_since_kth_drop = 0
        if (rule.after_lr_drop is not None and self.epochs_since_kth_drop is not None
                and self.epochs_since_kth_drop >= rule.extra_epochs):
            return (f"{rule.extra_epochs} epoch(s) after LR drop #{rule.after_lr_drop} "
                    f"(stop.after_lr_drop={rule.after_lr_drop}, extra_epochs={rule.extra_epochs})")
        if rule.patience is not None and self.epochs_since_best >= rule.patience:
            return f"no val_acc improvement for {rule.patience} epochs (stop.patience)"
        if stage_epoch >= self.stage.epochs:
            n = self.stage.epochs
            return f"reached the stage's limit of {n} epoch{'' if n == 1 else 's'}"
        return None

    def describe(self) -> str:
        rule = self.stage.stop
        epochs = self.stage.epochs
        parts = [f"at most {epochs} epoch{'' if epochs == 1 else 's'}"]
        if rule.after_lr_drop is not None:
            n = rule.extra_epochs
            parts.append(f"{n} epoch{'' if n == 1 else 's'} after LR drop #{rule.after_lr_drop}")
        if rule.patience is not None:
            parts.append(f"{rule.patience} epochs without val improvement")
        return ", or ".join(parts)
