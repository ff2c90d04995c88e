"""One training run from a resolved config: stages, epochs, checkpoints, the run directory.

The loop is a small state machine over a `position` (stage, epoch within the stage, step
within the epoch). Every checkpoint stores the position where training continues, so a run
resumed from any checkpoint (epoch end or a cut in the middle of an epoch) replays exactly
what an uninterrupted run does; on the CPU the weights and metrics.csv come out identical.
"""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lowres import config as config_mod
from lowres.augment import build_pipeline
from lowres.config import Config
from lowres.data.loader import EpochLoader
from lowres.data.prepare import Prepared
from lowres.models import build_model
from lowres.track.runlog import RunLog
from lowres.track.tensorboard import TensorBoardLogger
from lowres.train import checkpoint, distributed, rng
from lowres.train.background import BackgroundWriter, snapshot
from lowres.train.data_fingerprint import fingerprint
from lowres.train.device import DevicePolicy
from lowres.train.engine import CONTINUE, CUT, SAVE, Engine, EpochProgress
from lowres.train.nan_guard import NanGuard, require_finite
from lowres.train.optim import Schedule, build_optimizer
from lowres.train.plan import StopRule


@dataclass
class RunResult:
    run_dir: Path
    state: str  # finished | stopped
    epochs: int
    best_val_acc: float | None


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


class Run:
    """Everything a training run holds between epochs."""

    def __init__(self, cfg: Config, run_dir: Path, data: Prepared, policy: DevicePolicy,
                 dist: distributed.Context):
        self.cfg, self.data, self.policy, self.dist = cfg, data, policy, dist
        self.log = RunLog(run_dir, enabled=dist.is_main)
        self.tensorboard = TensorBoardLogger(run_dir, enabled=cfg.track.tensorboard and dist.is_main)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        model = build_model(cfg.model, data.num_classes, in_channels=data.image_shape[0],
                            image_size=data.image_shape[1])
        self.engine = Engine(model, policy, cfg.train.label_smoothing, cfg.train.ema,
                             distributed=dist.world_size > 1)
        self.engine.nan_guard = NanGuard(cfg.train.on_nan, cfg.train.nan_max_skips, policy.device,
                                         resume_hint=self.log.resume_hint)
        if dist.world_size > 1:
            self.engine.nan_guard.sum_over_ranks = \
                lambda n: int(dist.all_reduce_sum([float(n)])[0])
            self.engine.nan_guard.all_ranks = _finite_on_every_rank
        self.resumed_note: str | None = None  # a fallback or a lock take-over, said at resume
        self._fingerprint = fingerprint(data)  # hashes the file list: once, not per save
        torch.manual_seed(cfg.seed + 7919 * dist.rank)  # dropout draws differ per rank
        self.loader = EpochLoader(data.train_images, data.train_labels, cfg.train.batch_size,
                                  policy.device, policy.resident, cfg.seed, dist.rank,
                                  dist.world_size)
        self.aug_gen = torch.Generator(device=policy.device)
        self.aug_gen.manual_seed(cfg.seed * 1_000_003 + dist.rank)
        self.position = {"stage": 0, "stage_epoch": 0, "step": 0, "epoch": 0, "started": False}
        self.partial: EpochProgress | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedule: Schedule | None = None
        self.stop: StopRule | None = None
        self.elapsed = 0.0
        self.best = {"val_acc": None, "epoch": None}
        self.writer = BackgroundWriter()

    # ------------------------------------------------------------------ stages
    def start_stage(self) -> None:
        """Build (or carry over) the optimizer, schedule and stop rule of the current stage."""
        stage = self.cfg.stages[self.position["stage"]]
        fresh = stage.reset_optimizer or self.optimizer is None
        if fresh:
            self.optimizer = build_optimizer(self.engine.module, stage.optimizer)
        new_schedule = Schedule(stage.scheduler, stage.optimizer.lr, self.loader.steps_per_epoch,
                                stage.epochs)
        if not fresh and self.schedule is not None and self.schedule.cfg.name == stage.scheduler.name:
            new_schedule.load_state_dict(self.schedule.state_dict())  # continues, e.g. plateau LR
        self.schedule = new_schedule
        self.stop = StopRule(stage)
        self.position["started"] = True
        self.log.event("stage_start", epoch=self.position["epoch"], stage=self.position["stage"],
                       name=stage.name or f"stage{self.position['stage'] + 1}",
                       reset_optimizer=fresh)

    def pipeline(self):
        stage = self.cfg.stages[self.position["stage"]]
        pipeline = build_pipeline(stage.augment, self.data.mean, self.data.std, self.data.num_classes)
        if self.policy.compile_augment:
            pipeline.compile_ops()
        return pipeline

    # ------------------------------------------------------------------ checkpoints
    def data_meta(self) -> dict:
        index = self.data.index
        return {"class_names": self.data.class_names, "mean": self.data.mean, "std": self.data.std,
                "image_shape": list(self.data.image_shape), "layout": index.layout,
                "root": str(index.root), "fingerprint": self._fingerprint}

    def state(self, kind: str, position: dict | None = None,
              partial: EpochProgress | None = None) -> dict:
        """The checkpoint contents (train/checkpoint.py lists every key); live tensors."""
        partial = partial if partial is not None else self.partial
        return {
            "kind": kind,
            "config": config_mod.to_dict(self.cfg),
            "data": self.data_meta(),
            "model": self.engine.module.state_dict(),
            "ema": self.engine.ema.state_dict() if self.engine.ema else None,
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "schedule": self.schedule.state_dict() if self.schedule else None,
            "stop": self.stop.state_dict() if self.stop else None,
            "scaler": self.engine.scaler.state_dict() if self.engine.scaler else None,
            "position": dict(position or self.position),
            "partial": partial.as_dict() if partial else None,
            "rng": rng.capture(self.aug_gen, self.policy.device),
            "elapsed": self.elapsed,
            "best": dict(self.best),
            "nan_skips": self.engine.nan_guard.skipped(),
        }

    def save_last(self, position: dict | None = None, partial: EpochProgress | None = None) -> None:
        """last.pt: a snapshot now, written by the background writer."""
        if self.dist.is_main:
            state = snapshot(self.state("last", position, partial))
            require_finite(state["model"], "last.pt")
            if state["ema"] is not None:
                require_finite(state["ema"], "last.pt (EMA)")
            path = self.log.checkpoint_dir / "last.pt"
            hint = self.log.resume_hint
            # The last.pt it replaces stays as last.prev.pt: resume falls back to it.
            self.writer.checkpoint(lambda: checkpoint.save(state, path, keep_previous=True,
                                                           then=hint))

    def save_mid_epoch(self, progress: EpochProgress) -> None:
        """A mid-epoch last.pt (train.checkpoint_minutes): resuming from it replays the rest
        of the epoch exactly. Called on every rank at the same step (the sums are summed)."""
        self.save_last(dict(self.position, step=progress.step),
                       progress.summed(self.dist.all_reduce_sum))

    def save_best(self, use_ema: bool) -> None:
        if not self.dist.is_main:
            return
        weights = self.engine.ema.state_dict() if use_ema else self.engine.module.state_dict()
        state = snapshot({"kind": "best", "config": config_mod.to_dict(self.cfg),
                          "data": self.data_meta(), "model": weights, "ema": None,
                          "position": dict(self.position), "best": dict(self.best),
                          "weights": "ema" if use_ema else "raw"})
        require_finite(state["model"], "best.pt")  # a broken best.pt never replaces a good one
        path = self.log.checkpoint_dir / "best.pt"
        hint = self.log.resume_hint
        self.writer.checkpoint(lambda: checkpoint.save(state, path, then=hint))

    def restore(self, state: dict) -> None:
        self.engine.module.load_state_dict(state["model"])
        if self.engine.ema is not None:
            self.engine.ema.load_state_dict(state["ema"] or state["model"])
        self.position = dict(state["position"])
        stages = self.cfg.stages
        stage = stages[self.position["stage"]] if self.position["stage"] < len(stages) else None
        if state["optimizer"] is not None and stage is not None:
            # A stage that carries its optimizer over has the same kind as the one before
            # (config validation), so the current stage's settings rebuild either one.
            self.optimizer = build_optimizer(self.engine.module, stage.optimizer)
            self.optimizer.load_state_dict(state["optimizer"])
        if stage is not None and self.position["started"]:
            self.schedule = Schedule(stage.scheduler, stage.optimizer.lr,
                                     self.loader.steps_per_epoch, stage.epochs)
            self.schedule.load_state_dict(state["schedule"])
            self.stop = StopRule(stage)
            self.stop.load_state_dict(state["stop"])
        if self.engine.scaler is not None and state["scaler"]:
            self.engine.scaler.load_state_dict(state["scaler"])
        if state["partial"]:
            self.partial = EpochProgress(**state["partial"])
            if not self.dist.is_main:  # the saved sums cover all ranks: count them once
                self.partial = EpochProgress(step=self.partial.step)
        # Streams that cannot continue (other ranks, another device type) are reseeded
        # from where the run stands (exact resume is promised for one process, one device).
        offset = (self.position["epoch"] * 100_003 + self.position["step"]) * 7919 + self.dist.rank
        note = rng.restore(state["rng"], self.aug_gen, self.policy.device,
                           reseed=self.cfg.seed * 1_000_003 + offset)
        if note and self.dist.is_main:
            self.log.event("warning", message=note)
            print(f"lowres: note: {note}", file=sys.stderr)
        if not self.dist.is_main:
            torch.manual_seed(self.cfg.seed + offset)
            self.aug_gen.manual_seed(self.cfg.seed * 1_000_003 + offset)
        self.elapsed = state["elapsed"]
        self.best = dict(state["best"])
        self.engine.nan_guard.skipped_before = int(state.get("nan_skips") or 0)


def _finite_on_every_rank(finite: torch.Tensor) -> torch.Tensor:
    """AND of a 0-d bool over the ranks, on the device (train.on_nan=skip_step under DDP)."""
    flag = finite.to(torch.int32)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return flag.bool()
