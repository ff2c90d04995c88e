"""What the epoch does after each step, and why a run stops early.

`StopFlag` is raised by SIGTERM/SIGINT, a time limit or a pause request; `StepControl`
turns it, and the `train.checkpoint_minutes` clock, into the action the engine takes
after a step (CONTINUE, SAVE a mid-epoch checkpoint, or CUT the epoch here). Under DDP the
ranks agree on that action, so they all save or stop at the same step.
"""
from __future__ import annotations

import os
import signal
import sys
import time

from lowres.train import distributed
from lowres.train.engine import CONTINUE, CUT, SAVE


class StopFlag:
    """Set by SIGTERM/SIGINT, a time limit or a pause request; checked after every step."""

    def __init__(self, time_limit: float | None, pause_after_epochs: int | None,
                 pause_after_steps: int | None):
        self.reason: str | None = None
        self.deadline = time.monotonic() + time_limit if time_limit else None
        self.pause_after_epochs = pause_after_epochs
        self.pause_after_steps = pause_after_steps
        self.steps = 0
        self._old: dict = {}

    def __call__(self) -> bool:
        self.steps += 1
        if self.reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.reason = "time limit reached"
        if self.reason is None and self.pause_after_steps and self.steps >= self.pause_after_steps:
            self.reason = f"paused after {self.steps} steps"
        return self.reason is not None

    def epoch_done(self, epochs_this_session: int) -> bool:
        if self.reason is None and self.pause_after_epochs and \
                epochs_this_session >= self.pause_after_epochs:
            self.reason = f"paused after {epochs_this_session} epoch(s)"
        if self.reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.reason = "time limit reached"
        return self.reason is not None

    def _handle(self, signum, frame) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.reason = signal.Signals(signum).name
        if os.environ.get("RANK", "0") == "0":  # one voice: every rank gets the signal
            print(f"\nlowres: {self.reason} received: saving a checkpoint after this step "
                  f"(Ctrl-C again to abort)", file=sys.stderr)

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (library use): no signal handling
                pass

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class StepControl:
    """What the epoch does after each step: CUT when the StopFlag is up, SAVE a mid-epoch
    checkpoint when `checkpoint_minutes` have passed since the last one, else CONTINUE.
    Under DDP every rank must take the same action at the same step: the ranks agree every
    CONSENSUS_EVERY steps (rank 0's clock decides a SAVE, any rank's flag a CUT)."""

    CONSENSUS_EVERY = 20

    def __init__(self, flag: StopFlag, checkpoint_minutes: float, dist: distributed.Context,
                 clock=time.monotonic):
        self.flag, self.dist, self.clock = flag, dist, clock
        self.period = checkpoint_minutes * 60.0
        self.last_save = clock()

    def saved(self) -> None:
        """A checkpoint was just written (mid-epoch or at an epoch end): restart the clock."""
        self.last_save = self.clock()

    def __call__(self) -> str:
        cut = self.flag()
        save = self.period > 0 and self.clock() - self.last_save >= self.period
        if self.dist.world_size > 1:
            if self.flag.steps % self.CONSENSUS_EVERY:
                return CONTINUE
            cut = self.dist.broadcast_flag(cut)
            save = self.dist.broadcast_from_main([1.0 if save else 0.0])[0] > 0
        if cut:
            return CUT
        if save:
            self.saved()
            return SAVE
        return CONTINUE
