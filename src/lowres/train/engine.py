"""The step, the epoch and evaluation. No file I/O here: `train.runner` owns the run.

Metrics accumulate on the device and are read (synchronising with the device) only at a
progress refresh or at the end of the epoch, never once per step.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lowres.data.loader import EpochLoader, eval_batches
from lowres.progress import bar
from lowres.train.device import DevicePolicy
from lowres.train.ema import EMA
from lowres.train.optim import Schedule, set_lr


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

    def as_dict(self) -> dict:
        return {"step": self.step, "loss_sum": self.loss_sum, "correct": self.correct,
                "seen": self.seen, "seconds": self.seconds}


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
            from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415

            ids = [policy.device.index] if policy.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.module, device_ids=ids)
        self.forward = self.train_model
        if policy.compile:
            self.forward = torch.compile(self.train_model)
        self.smoothing = label_smoothing
        self.scaler = torch.amp.GradScaler("cuda") if policy.needs_scaler else None

    def _call(self, model_fn: Callable, x: torch.Tensor) -> torch.Tensor:
        """Run the (maybe compiled) model; a compile failure falls back to eager, once."""
        try:
            return model_fn(x)
        except Exception as exc:  # noqa: BLE001
            if model_fn is not self.forward or self.forward is self.train_model:
                raise
            print(f"lowres: torch.compile failed ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); continuing without it",
                  file=sys.stderr)
            self.forward = self.train_model
            return self.train_model(x)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.policy.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def train_epoch(self, loader: EpochLoader, epoch: int, pipeline, optimizer: torch.optim.Optimizer,
                    schedule: Schedule, step_offset: int, aug_generator: torch.Generator,
                    resume: EpochProgress | None = None, should_cut: Callable[[], bool] = lambda: False,
                    desc: str = "") -> EpochProgress:
        """Train one epoch (or its rest, from `resume`); stop early when `should_cut()`."""
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
        for x_u8, y in loader.batches(epoch, start_step=state.step):
            lr = schedule.lr_at(step_offset + state.step)
            set_lr(optimizer, lr)
            x, targets = pipeline(x_u8, y, aug_generator)
            x = self._prepare(x)
            with self.policy.autocast():
                logits = self._call(self.forward, x)
            loss = soft_cross_entropy(logits.float(), targets, self.smoothing)
            optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(optimizer)
                self.scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if self.ema is not None:
                self.ema.update()
            loss_sum += loss.detach().double() * y.shape[0]
            correct += (logits.detach().argmax(dim=1) == y).sum()
            seen += y.shape[0]
            state.step += 1
            progress.update(1)
            now = time.perf_counter()
            if progress.disable is False and now - last_refresh > 0.5:  # sync only to show
                last_refresh = now
                total_seen = state.seen + seen
                progress.set_postfix_str(
                    f"loss {(state.loss_sum + loss_sum.item()) / total_seen:.3f} "
                    f"acc {(state.correct + correct.item()) / total_seen:.3f} "
                    f"lr {lr:.3g} {seen / (now - start):.0f} img/s")
            if should_cut() and state.step < steps:
                state.cut = True
                break
        progress.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        state.seconds += time.perf_counter() - start
        state.loss_sum += float(loss_sum.item())
        state.correct += int(correct.item())
        state.seen += seen
        return state

    @torch.inference_mode()
    def logits(self, model: torch.nn.Module, images: np.ndarray, pipeline, batch_size: int,
               tta: str = "none") -> torch.Tensor:
        """Float32 logits [N, K] on the CPU; `tta='flip'` averages with horizontal flips
        (in probability space, returned as log-probabilities)."""
        model.eval()
        out = []
        for x_u8, _ in eval_batches(images, None, batch_size, self.policy.device):
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
