"""Which plans let a trial be continued with a larger epoch budget from its checkpoint.

Successive halving trains a trial to a rung and, if it is promising, further. In
`lowres tune` a promising trial simply keeps training (its plan always has the full epoch
count), and a stopped one resumes exactly from last.pt, whatever its schedule. Giving a
trial *more* epochs than it was planned with (raising `stages.N.epochs` on resume) keeps
the epochs already trained valid only when the LR at epoch e does not depend on the
stage's length: `budget_free` answers that from the `SCHEDULES` rules themselves, by
comparing a stage's LR curve planned for E epochs with the same stage planned for 2E.
"""
from __future__ import annotations

from lowres.train.schedules import SCHEDULES, Schedule


def budget_free(scheduler_cfg, epochs: int = 6, steps_per_epoch: int = 10) -> bool:
    """True when this scheduler's first `epochs` epochs have the same LRs in a longer stage."""
    short = Schedule(scheduler_cfg, 0.1, steps_per_epoch, epochs)
    long = Schedule(scheduler_cfg, 0.1, steps_per_epoch, 2 * epochs)
    steps = range(epochs * steps_per_epoch)
    return all(abs(short.lr_at(s) - long.lr_at(s)) <= 1e-12 for s in steps)


def budget_free_schedules() -> list[str]:
    """The scheduler names whose LR at an epoch ignores the stage's length (default settings)."""
    from lowres.config import SchedulerConfig

    return [name for name in SCHEDULES if budget_free(SchedulerConfig(name=name))]
