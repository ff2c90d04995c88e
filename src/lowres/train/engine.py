"""The step, the epoch and evaluation (and the EMA of the weights, evaluated alongside the
raw weights). No file I/O here: `train.run_state` owns the run.

Metrics accumulate on the device and are read (synchronising with the device) only at a
progress refresh or at the end of the epoch, never once per step.
"""
from __future__ import annotations

import copy
import dataclasses
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lowres.augment.base import forced_masking
from lowres.data.loader import EpochLoader, eval_batches
from lowres.errors import LowresError, compile_failure
from lowres.basics.progress import bar
from lowres.train.device import intended_sync
from lowres.train.device import DevicePolicy
from lowres.train.nan_guard import CHECK_EVERY, NanGuard
from lowres.train.optim import set_lr
from lowres.train.schedules import Schedule


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._pairs = [(e, m) for e, m in zip(self.module.parameters(), model.parameters())]
        self._buffers = [(e, m) for e, m in zip(self.module.buffers(), model.buffers())]

    @torch.no_grad()
    def update(self) -> None:
        ema = [e for e, _ in self._pairs]
        raw = [m.detach() for _, m in self._pairs]
        torch._foreach_lerp_(ema, raw, 1.0 - self.decay)
        for e, m in self._buffers:  # BN statistics are copied, not averaged
            e.copy_(m)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)


# What the training loop tells an epoch after each step (see Engine.train_epoch).
CONTINUE, SAVE, CUT = "continue", "save", "cut"
REFRESH_SECONDS = 0.5  # progress-bar refresh period: each refresh reads device sums


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy with label smoothing for int labels or soft (MixUp/CutMix) targets."""
    if targets.dtype == torch.long:
        return F.cross_entropy(logits, targets, label_smoothing=smoothing)
    k = logits.shape[1]
    targets = targets * (1.0 - smoothing) + smoothing / k
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


@dataclass
class EpochProgress:
    """What an epoch has done so far; stored in a checkpoint when an epoch is cut."""

    step: int = 0  # steps completed in this epoch
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0  # training seconds spent in this epoch
    cut: bool = False  # stopped before the end (signal, time limit)

    def summed(self, all_reduce_sum: Callable[[list[float]], list[float]]) -> "EpochProgress":
        """This progress with its sums over every rank (`Context.all_reduce_sum`): what a
        checkpoint keeps and an epoch end reports. A collective: every rank calls it."""
        loss_sum, correct, seen = all_reduce_sum([self.loss_sum, float(self.correct),
                                                  float(self.seen)])
        return dataclasses.replace(self, loss_sum=loss_sum, correct=int(correct), seen=int(seen))

    def as_dict(self) -> dict:
        return {"step": self.step, "loss_sum": self.loss_sum, "correct": self.correct,
                "seen": self.seen, "seconds": self.seconds}

    def metrics(self) -> dict[str, float]:
        """The epoch's training metrics, as metrics.csv names them (run/metrics.py)."""
        seen = max(self.seen, 1)
        return {"train_loss": self.loss_sum / seen, "train_acc": self.correct / seen,
                "images_per_s": self.seen / self.seconds if self.seconds > 0 else None}


class Engine:
    def __init__(self, model: torch.nn.Module, policy: DevicePolicy, label_smoothing: float,
                 ema_decay: float = 0.0, distributed: bool = False):
        self.policy = policy
        self.module = model.to(policy.device)  # the bare model: state dicts come from here
        if policy.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.ema = EMA(self.module, ema_decay) if ema_decay > 0 else None
        self.train_model: torch.nn.Module = self.module
        if distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [policy.device.index] if policy.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.module, device_ids=ids)
        self.forward = self.train_model
        if policy.compile:
            # Static shapes: the training loader only yields full batches, so one graph
            # serves the whole run and no batch size triggers a recompile.
            self.forward = torch.compile(self.train_model, dynamic=False)
        self.smoothing = label_smoothing
        self.scaler = torch.amp.GradScaler("cuda") if policy.needs_scaler else None
        self.nan_guard: NanGuard | None = None  # set by the run (train.on_nan)

    @property
    def compiled(self) -> bool:
        return self.forward is not self.train_model

    def train_step(self, x: torch.Tensor, targets: torch.Tensor,
                   optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, backward and optimizer step on one batch; (loss, logits), both detached.

        Compilation happens lazily, the forward at the first call and the backward at the
        first `backward()`, so the whole step runs under the fallback: a compile failure in
        either falls back to eager once, with one line. An error that eager also raises (a
        shape bug) is that error, not a compile failure; running out of memory is its own
        one-line error."""
        try:
            return self._step(self.forward, x, targets, optimizer)
        except torch.OutOfMemoryError:
            optimizer.zero_grad(set_to_none=True)
            raise LowresError(f"out of memory on {self.policy.device} at {x.shape[0]} images per "
                              f"step: {self._batch_that_fits(x, optimizer)}") from None
        except Exception as exc:  # any compile failure (it is re-raised unless eager succeeds)
            if not self.compiled:
                raise
            optimizer.zero_grad(set_to_none=True)
            result = self._step(self.train_model, x, targets, optimizer)
            print(f"lowres: torch.compile failed ({compile_failure(exc)}); continuing without it",
                  file=sys.stderr)
            self.forward = self.train_model
            return result

    resident_bytes = 0  # the dataset kept on this GPU (set by the run): no room for batches there

    def _batch_that_fits(self, x: torch.Tensor, optimizer: torch.optim.Optimizer) -> str:
        """The advice of an out-of-memory error: the batch the memory estimate fits beside
        the dataset when the dataset is kept on the GPU."""
        from lowres.train.memory_estimate import estimate

        if self.policy.gpu is None:
            return "lower train.batch_size"
        kind = "sgd" if isinstance(optimizer, torch.optim.SGD) else "adam"
        try:  # the estimate copies the model: after an OOM that copy may not fit either
            if x.is_cuda:
                torch.cuda.empty_cache()
            fits = estimate(self.module, tuple(x.shape[1:]), kind, self.ema is not None,
                            self.policy.amp_dtype is not None).largest_batch(self.policy.gpu.memory_bytes,
                                                                             self.resident_bytes)
        except (torch.OutOfMemoryError, RuntimeError):
            return "lower train.batch_size"
        dataset = f", {self.resident_bytes / 2**30:.2f} GiB of it the dataset" if self.resident_bytes else ""
        return (f"set train.batch_size={fits} or lower (the estimate of what fits this "
                f"{self.policy.gpu.short_name}'s {self.policy.gpu.memory_bytes / 2**30:.0f} GiB{dataset})"
                if fits else "the model alone does not fit this GPU: choose a smaller model.name"
                + (" or data.resident=no" if self.resident_bytes else ""))

    def _step(self, model_fn: Callable, x: torch.Tensor, targets: torch.Tensor,
              optimizer: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        guard = self.nan_guard
        before = guard.snapshot(self.module, optimizer) if guard is not None else None
        with self.policy.autocast():
            logits = model_fn(x)
        loss = soft_cross_entropy(logits.float(), targets, self.smoothing)
        optimizer.zero_grad(set_to_none=True)
        with guard.step(loss, self.module, optimizer, before) if guard is not None \
                else nullcontext() as finite:
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                # GradScaler reads its inf check on the host before stepping: one sync per
                # step, the price of fp16 on GPUs without bf16 (T4, V100).
                with intended_sync("fp16 grad scaler"):
                    self.scaler.step(optimizer)
                self.scaler.update()
            else:
                loss.backward()
                optimizer.step()
        loss = loss.detach()
        if before is not None:  # a skipped step adds nothing to the epoch's loss
            loss = torch.where(finite, loss, torch.zeros_like(loss))
        return loss, logits.detach()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.policy.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def train_epoch(self, loader: EpochLoader, epoch: int, pipeline, optimizer: torch.optim.Optimizer,
                    schedule: Schedule, step_offset: int, aug_generator: torch.Generator,
                    resume: EpochProgress | None = None,
                    control: Callable[[], str] = lambda: CONTINUE,
                    save: Callable[[EpochProgress], None] = lambda progress: None,
                    desc: str = "") -> EpochProgress:
        """Train one epoch (or its rest, from `resume`).

        After every step `control()` says what to do: CONTINUE, SAVE (call `save` with the
        epoch's progress so far, a mid-epoch checkpoint, and go on) or CUT (stop here)."""
        state = resume or EpochProgress()
        self.train_model.train()
        device = self.policy.device
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        steps = loader.steps_per_epoch
        progress = bar(total=steps, desc=desc, unit="step")
        progress.update(state.step)
        start = time.perf_counter()
        last_refresh = start

        def check_numbers() -> None:  # reads the non-finite counter: a sync, bounded
            if self.nan_guard is not None:
                self.nan_guard.check(epoch, state.step)

        def so_far() -> EpochProgress:  # reads the device sums: a sync, only when asked
            return EpochProgress(step=state.step, loss_sum=state.loss_sum + float(loss_sum.item()),
                                 correct=state.correct + int(correct.item()),
                                 seen=state.seen + seen,
                                 seconds=state.seconds + time.perf_counter() - start)

        with forced_masking(self.policy.augment_masking):
            for x_u8, y in loader.batches(epoch, start_step=state.step):
                lr = schedule.lr_at(step_offset + state.step)
                set_lr(optimizer, lr)
                x, targets = pipeline(x_u8, y, aug_generator)
                loss, logits = self.train_step(self._prepare(x), targets, optimizer)
                if self.ema is not None:
                    self.ema.update()
                loss_sum += loss.double() * y.shape[0]
                correct += (logits.argmax(dim=1) == y).sum()
                seen += y.shape[0]
                state.step += 1
                progress.update(1)
                now = time.perf_counter()
                if progress.disable is False and now - last_refresh > REFRESH_SECONDS:
                    last_refresh = now
                    with intended_sync("progress refresh"):
                        shown = so_far()
                        if self.nan_guard is None or self.nan_guard.sum_over_ranks is None:
                            check_numbers()  # (under DDP only rank 0 refreshes)
                    progress.set_postfix_str(
                        f"loss {shown.loss_sum / shown.seen:.3f} acc {shown.correct / shown.seen:.3f} "
                        f"lr {lr:.3g} {seen / (now - start):.0f} img/s")
                if state.step % CHECK_EVERY == 0:
                    with intended_sync("non-finite loss check"):
                        check_numbers()
                action = control()
                if action == SAVE and state.step < steps:
                    with intended_sync("mid-epoch checkpoint"):
                        check_numbers()  # never a checkpoint after a bad step
                        save(so_far())
                elif action == CUT and state.step < steps:
                    state.cut = True
                    break
        progress.close()
        with intended_sync("epoch end"):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            state.seconds += time.perf_counter() - start
            check_numbers()  # before the epoch is published and saved
            state.loss_sum += float(loss_sum.item())
            state.correct += int(correct.item())
        state.seen += seen
        return state

    @torch.inference_mode()
    def logits(self, model: torch.nn.Module, images: np.ndarray, pipeline, batch_size: int,
               tta: str = "none", views=None) -> torch.Tensor:
        """Float32 logits [N, K] on the CPU; `tta='flip'` averages with horizontal flips
        (in probability space, returned as log-probabilities). `views(x_u8, forward)`, when
        given (lowres.predict.tta), returns a batch's probabilities from any views it
        makes, `forward` taking normalised float images to float32 logits."""
        model.eval()
        out = []

        def forward(x: torch.Tensor) -> torch.Tensor:
            with self.policy.autocast():
                return model(self._prepare(x)).float()

        for x_u8, _ in eval_batches(images, None, batch_size, self.policy.device):
            if views is not None:
                out.append(views(x_u8, forward).clamp_min(1e-12).log().cpu())
                continue
            x = self._prepare(pipeline.normalize(x_u8))
            with self.policy.autocast():
                z = model(x).float()
            if tta == "flip":
                with self.policy.autocast():
                    z_flip = model(torch.flip(x, dims=[3])).float()
                probs = (z.softmax(1) + z_flip.softmax(1)) / 2
                z = probs.clamp_min(1e-12).log()
            out.append(z.cpu())
        return torch.cat(out) if out else torch.empty(0)

    def evaluate(self, model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, pipeline,
                 batch_size: int) -> tuple[float, float]:
        """(cross-entropy without smoothing, accuracy) on labelled images; NaN when empty."""
        result = self.evaluate_per_image(model, images, labels, pipeline, batch_size)
        return result.loss, result.acc

    def evaluate_per_image(self, model: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
                           pipeline, batch_size: int) -> "Evaluation":
        """Like `evaluate`, keeping each image's correctness and loss: paired comparisons of
        runs on the same split need to know *which* images a model got right."""
        if len(images) == 0:
            empty = np.zeros(0, dtype=bool)
            return Evaluation(float("nan"), float("nan"), empty, np.zeros(0, dtype=np.float32))
        logits = self.logits(model, images, pipeline, batch_size)
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        losses = F.cross_entropy(logits, y, reduction="none")
        correct = logits.argmax(1) == y
        return Evaluation(F.cross_entropy(logits, y).item(), correct.double().mean().item(),
                          correct.numpy(), losses.numpy())


@dataclass
class Evaluation:
    """One evaluation pass: the means and the per-image values they come from."""

    loss: float
    acc: float
    correct: np.ndarray  # bool [N], in the order of the labels
    losses: np.ndarray  # float32 [N]

    def metrics(self, prefix: str) -> dict[str, float | None]:
        """The means as metrics.csv columns ("val_loss", "ema_val_acc", ...); None where
        there was nothing to evaluate (no validation split)."""
        values = {"loss": self.loss, "acc": self.acc}
        return {prefix + name: None if value != value else value for name, value in values.items()}
