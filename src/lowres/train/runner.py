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
from lowres.train import checkpoint, distributed
from lowres.train.device import DevicePolicy
from lowres.train.engine import Engine, EpochProgress
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
        return build_pipeline(stage.augment, self.data.mean, self.data.std, self.data.num_classes)

    # ------------------------------------------------------------------ checkpoints
    def data_meta(self) -> dict:
        index = self.data.index
        return {"class_names": self.data.class_names, "mean": self.data.mean, "std": self.data.std,
                "image_shape": list(self.data.image_shape), "layout": index.layout,
                "root": str(index.root)}

    def state(self, kind: str) -> dict:
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
            "position": dict(self.position),
            "partial": self.partial.as_dict() if self.partial else None,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    "augment": self.aug_gen.get_state()},
            "elapsed": self.elapsed,
            "best": dict(self.best),
        }

    def save_last(self) -> None:
        if self.dist.is_main:
            checkpoint.save(self.state("last"), self.log.checkpoint_dir / "last.pt")

    def save_best(self, use_ema: bool) -> None:
        if not self.dist.is_main:
            return
        weights = self.engine.ema.state_dict() if use_ema else self.engine.module.state_dict()
        checkpoint.save({"kind": "best", "config": config_mod.to_dict(self.cfg),
                         "data": self.data_meta(), "model": weights, "ema": None,
                         "position": dict(self.position), "best": dict(self.best),
                         "weights": "ema" if use_ema else "raw"},
                        self.log.checkpoint_dir / "best.pt")

    def restore(self, state: dict) -> None:
        self.engine.module.load_state_dict(state["model"])
        if self.engine.ema is not None:
            self.engine.ema.load_state_dict(state["ema"] or state["model"])
        self.position = dict(state["position"])
        stage = self.cfg.stages[self.position["stage"]] if self.position["stage"] < len(self.cfg.stages) else None
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
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.aug_gen.set_state(state["rng"]["augment"])
        if not self.dist.is_main:
            # Rank 0's saved streams continue on rank 0; other ranks draw their own, derived
            # from where the run stands (exact resume is promised for one process).
            offset = (self.position["epoch"] * 100_003 + self.position["step"]) * 7919 + self.dist.rank
            torch.manual_seed(self.cfg.seed + offset)
            self.aug_gen.manual_seed(self.cfg.seed * 1_000_003 + offset)
        self.elapsed = state["elapsed"]
        self.best = dict(state["best"])
