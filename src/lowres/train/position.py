"""Where a run stands: which stage, how many epochs done, how many steps into the epoch.

The position is what makes resume exact: every checkpoint stores the position where
training continues, and the loop (train/loop.py) is the only code that moves it, through
the four methods below, in this order over a stage's life:

    start_stage -> (cut_at step -> ...) finish_epoch -> ... -> finish_stage

A checkpoint keeps it as a plain dict (`as_dict`), the format of `checkpoint["position"]`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Position:
    stage: int = 0  # index into cfg.stages; len(cfg.stages) once every stage is done
    stage_epoch: int = 0  # epochs finished in this stage
    step: int = 0  # steps finished in the current epoch (0 at an epoch boundary)
    epoch: int = 0  # epochs finished in the whole run (the last metrics.csv row)
    started: bool = False  # the stage's optimizer, schedule and stop rule exist

    def start_stage(self) -> None:
        self.started = True

    def cut_at(self, step: int) -> None:
        """The epoch stopped after `step` steps (a pause, a signal): resume continues there."""
        self.step = step

    def finish_epoch(self) -> None:
        self.epoch += 1
        self.stage_epoch += 1
        self.step = 0

    def finish_stage(self) -> None:
        self.stage += 1
        self.stage_epoch = 0
        self.started = False

    def at_step(self, step: int) -> Position:
        """A copy `step` steps into the current epoch (what a mid-epoch checkpoint stores)."""
        return dataclasses.replace(self, step=step)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Position:
        return cls(**values)
