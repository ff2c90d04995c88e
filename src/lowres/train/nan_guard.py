"""Numbers that go wrong: a NaN or inf loss is caught on the device, without a per-step sync.

Reading the loss on the host after every step would make the host wait for the device at
every step. Instead each step adds `not isfinite(loss)` to a counter that stays on the
device, and the counter is read where the loop reads the device anyway (a progress refresh,
a mid-epoch checkpoint, the epoch end) and otherwise every CHECK_EVERY steps, each inside
`intended_sync`. So a run with a bad loss stops at most CHECK_EVERY steps later.

`train.on_nan`:
- stop (default): stop with one line (lower the LR, check the data). The weights may have
  become NaN in the steps before the check, but nothing is saved after the first bad step:
  every save first reads the counter, and `require_finite` refuses weights that are not
  finite, so last.pt and best.pt keep the last good state to resume from.
- skip_step: a step whose loss is not finite leaves the weights, BatchNorm statistics and
  optimizer state as they were (each is put back with `torch.where`, no sync), is counted
  (saved in checkpoints) and the run goes on; more than `train.nan_max_skips` such steps
  stop it as above. The EMA still takes its averaging step, toward the unchanged weights.
  The copies cost one extra write of the weights and optimizer state per step, so this
  mode is opt-in.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch

from lowres.errors import LowresError

CHECK_EVERY = 50  # steps between two reads of the counter, at most
ON_NAN = ("stop", "skip_step")  # the modes above; the config's train.on_nan choices


class NonFiniteLoss(LowresError):
    """The loss (or the weights) stopped being finite numbers."""


class NanGuard:
    def __init__(self, mode: str, max_skips: int, device: torch.device, resume_hint: str = ""):
        self.mode = mode  # stop | skip_step
        self.max_skips = max_skips
        self.resume_hint = resume_hint
        self.bad = torch.zeros((), dtype=torch.int64, device=device)  # this session's bad steps
        self.skipped_before = 0  # skipped in earlier sessions (from the checkpoint)
        # Under DDP every rank must stop at the same step: the counts are summed over the
        # ranks, at points all ranks reach together (not the rank-0 progress refresh).
        self.sum_over_ranks: Callable[[int], int] | None = None
        # skip_step under DDP: the gradients were averaged over the ranks, so a bad loss on
        # one rank spoils the step on all of them: the flag is AND-ed over the ranks (a
        # collective on the device, no host read).
        self.all_ranks: Callable[[torch.Tensor], torch.Tensor] | None = None

    def observe(self, loss: torch.Tensor) -> torch.Tensor:
        """Count a non-finite loss on the device; the step's `finite` flag (a 0-d bool)."""
        finite = torch.isfinite(loss)
        self.bad += (~finite).long()
        return finite

    @contextmanager
    def step(self, loss: torch.Tensor, module: torch.nn.Module,
             optimizer: torch.optim.Optimizer, before: list | None) -> Iterator[torch.Tensor]:
        """Around the optimizer step: in skip_step mode, put everything back when the loss
        was not finite. `before` is `snapshot(...)`, taken before the forward (BatchNorm
        updates its statistics during the forward)."""
        finite = self.observe(loss)
        if self.all_ranks is not None and self.mode == "skip_step":
            finite = self.all_ranks(finite)
        yield finite
        if self.mode == "skip_step" and before is not None:
            self._restore_where_bad(finite, module, optimizer, before)

    def snapshot(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list | None:
        if self.mode != "skip_step":
            return None
        tensors = _tensors(module, optimizer)
        return [(t, t.detach().clone()) for t in tensors]

    @torch.no_grad()
    def _restore_where_bad(self, finite, module, optimizer, before) -> None:
        known = {t.data_ptr() for t, _ in before}  # `p.data` is a new object per call
        for live, old in before:
            live.copy_(torch.where(finite, live, old))
        # State the optimizer created in this step (its first): back to zeros, which is
        # what a fresh momentum / Adam moment equals in effect.
        for t in _tensors(module, optimizer):
            if t.data_ptr() not in known:
                t.copy_(torch.where(finite, t, torch.zeros_like(t)))

    def check(self, epoch: int, step: int) -> None:
        """Read the counter (call inside `intended_sync`); raise NonFiniteLoss when the run
        must stop."""
        bad = int(self.bad.item())
        if self.sum_over_ranks is not None:
            bad = self.sum_over_ranks(bad)
        if self.mode == "skip_step":
            total = self.skipped_before + bad
            if total <= self.max_skips:
                return
            what = (f"{total} steps had a non-finite loss (more than train.nan_max_skips="
                    f"{self.max_skips}), the last by epoch {epoch + 1} step {step}")
        elif bad:
            what = (f"the loss became NaN/inf by epoch {epoch + 1} step {step} (checked every "
                    f"{CHECK_EVERY} steps at most)")
        else:
            return
        raise NonFiniteLoss(f"{what}; nothing since the last checkpoint was saved: lower the "
                            f"learning rate (stages.N.optimizer.lr), check the data for broken "
                            f"images, or set train.on_nan=skip_step"
                            + (f"; then {self.resume_hint}" if self.resume_hint else ""))

    def skipped(self) -> int:
        """Steps skipped so far in the run (a sync: checkpoint time only)."""
        return self.skipped_before + (int(self.bad.item()) if self.mode == "skip_step" else 0)


def _tensors(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    out = [p.data for p in module.parameters()] + [b for b in module.buffers()]
    for state in optimizer.state.values():
        out.extend(v for v in state.values() if isinstance(v, torch.Tensor))
    return out


def require_finite(state: dict, what: str) -> None:
    """Refuse to save weights that are not finite (one reduction per tensor, at save time)."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() \
                and not bool(torch.isfinite(value).all()):
            raise NonFiniteLoss(f"{what}: {key} holds NaN/inf values, so it was not saved (the "
                                f"previous checkpoint is kept): lower the learning rate "
                                f"(stages.N.optimizer.lr) or check the data for broken images")
