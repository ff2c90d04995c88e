"""What a training run holds between epochs, and how it becomes a checkpoint and back.

`Run` owns the model (through the engine), the loader, the augmentation generator, the
current stage's optimizer, schedule and stop rule, the `Position`, and the run
directory's writers. train/loop.py drives it; nothing here decides when things happen.
Every checkpoint stores the position where training continues, so a run resumed from any
checkpoint (epoch end or a cut in the middle of an epoch) replays exactly what an
uninterrupted run does; on the CPU the weights and metrics.csv come out identical.

The `Position` says where a run stands: which stage, how many epochs done, how many steps
into the epoch. The loop (train/loop.py) is the only code that moves it, through four
methods, in this order over a stage's life:

    start_stage -> (cut_at step -> ...) finish_epoch -> ... -> finish_stage

A checkpoint keeps it as a plain dict (`as_dict`), the format of `checkpoint["position"]`.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from lowres import config as config_mod
from lowres.augment import build_pipeline
from lowres.config import Config
from lowres.data.loader import EpochLoader
from lowres.data.prepare import Prepared
from lowres.models import build_model
from lowres.run.log import RunLog
from lowres.track.tensorboard import TensorBoardLogger
from lowres.run import checkpoint
from lowres.train import distributed, rng
from lowres.train.background import BackgroundWriter, snapshot
from lowres.train.data_fingerprint import fingerprint
from lowres.train.device import DevicePolicy
from lowres.train.engine import Engine, EpochProgress, Evaluation
from lowres.train import lr_find
from lowres.train.nan_guard import NanGuard, require_finite
from lowres.train.optim import build_optimizer
from lowres.train.time_budget import TimeBudget
from lowres.train.schedules import Schedule
from lowres.train.schedules import StopRule


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


@dataclass
class RunResult:
    run_dir: Path
    state: str  # finished | stopped
    epochs: int
    best_val_acc: float | None
    reason: str | None = None  # why a stopped run stopped (SIGINT, a time limit, a pause)


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
        self.moved_from: Path | None = None  # the run directory this one was copied from
        self._fingerprint = fingerprint(data)  # hashes the file list: once, not per save
        torch.manual_seed(cfg.seed + 7919 * dist.rank)  # dropout draws differ per rank
        self.loader = EpochLoader(data.train_images, data.train_labels, cfg.train.batch_size,
                                  policy.device, policy.resident, cfg.seed, dist.rank,
                                  dist.world_size)
        if policy.resident and policy.device.type == "cuda":  # no room for batches there
            self.engine.resident_bytes = data.train_images.nbytes + data.train_labels.nbytes
        self.aug_gen = torch.Generator(device=policy.device)
        self.aug_gen.manual_seed(cfg.seed * 1_000_003 + dist.rank)
        self.position = Position()
        self.partial: EpochProgress | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedule: Schedule | None = None
        self.stop: StopRule | None = None
        self.elapsed = 0.0
        self.budget: TimeBudget | None = None  # train.budget (time_budget.plan_budget)
        self.best = {"val_acc": None, "epoch": None}
        self.last_row: dict | None = None  # the latest metrics.csv row (loop.end_epoch)
        self.writer = BackgroundWriter()

    # ------------------------------------------------------------------ stages
    def start_stage(self) -> None:
        """Build (or carry over) the optimizer, schedule and stop rule of the current stage."""
        stage = self.stage
        if stage.optimizer.lr == lr_find.FIND:
            self.find_lr()
        fresh = stage.reset_optimizer or self.optimizer is None
        if fresh:
            self.optimizer = build_optimizer(self.engine.module, stage.optimizer)
        new_schedule = Schedule(stage.scheduler, stage.optimizer.lr, self.loader.steps_per_epoch,
                                stage.epochs)
        if not fresh and self.schedule is not None and self.schedule.cfg.name == stage.scheduler.name:
            new_schedule.load_state_dict(self.schedule.state_dict())  # continues, e.g. plateau LR
        self.schedule = new_schedule
        self.stop = StopRule(stage)
        self.position.start_stage()
        self.log.event("stage_start", epoch=self.position.epoch, stage=self.position.stage,
                       name=self.stage_name, reset_optimizer=fresh)

    def find_lr(self) -> None:
        """`optimizer.lr: find`: the LR range test (train/lr_find.py) on a copy of the model
        as it stands now, before the stage's first step; its suggestion becomes the stage's
        lr in the config, in config.yaml and in every checkpoint, so a resume never runs it
        again. Rank 0 runs it and every rank takes its number. The test leaves the model
        and the random streams as they were: the run stays reproducible."""
        pos, name = self.position, self.stage_name
        found = None
        if self.dist.is_main:
            result = lr_find.range_test(
                self.engine.module, self.cfg, self.stage, self.data, self.policy, self.loader,
                stage_index=pos.stage, desc=f"{name} lr-find",
                advice=f"set stages.{pos.stage}.optimizer.lr to a number "
                       f"(or try `lowres lr-find` with a lower --end)")
            found = {"lr": result.suggestion, "rule": result.rule, "start": result.start,
                     "end": result.end, "steps": len(result.lrs), "stopped": result.stopped,
                     "suggestions": result.suggestions, "seconds": round(result.seconds, 2)}
            if self.log.enabled:
                (self.log.dir / "plots").mkdir(exist_ok=True)
                result.save_plot(self.log.dir / "plots" / f"lr_find_stage{pos.stage + 1}.png")
            print(f"lowres: {name}: {result.line()} (LR range test, {len(result.lrs)} steps "
                  f"in {result.seconds:.1f} s)", file=sys.stderr)
        found = self.dist.broadcast_object_from_main(found)
        self.stage.optimizer.lr = found["lr"]
        if self.dist.is_main:
            config_mod.save(self.cfg, self.log.dir / "config.yaml")  # atomic (disk.replace_text)
        self.log.event("lr_find", epoch=pos.epoch, stage=pos.stage, name=name, **found)

    @property
    def stage(self):
        return self.cfg.stages[self.position.stage]

    @property
    def stage_name(self) -> str:
        return self.stage.name or f"stage{self.position.stage + 1}"

    @property
    def finished(self) -> bool:
        return self.position.stage >= len(self.cfg.stages)

    def pipeline(self):
        pipeline = build_pipeline(self.stage.augment, self.data.mean, self.data.std, self.data.num_classes)
        if self.policy.compile_augment:
            pipeline.compile_ops()
        return pipeline

    def train_epoch(self, pipeline, control) -> EpochProgress:
        """One epoch of the current stage (or its rest, after a mid-epoch resume)."""
        pos = self.position
        return self.engine.train_epoch(
            self.loader, pos.epoch, pipeline, self.optimizer, self.schedule,
            step_offset=pos.stage_epoch * self.loader.steps_per_epoch, aug_generator=self.aug_gen,
            resume=self.partial, control=control, save=self.save_mid_epoch,
            desc=f"{self.stage_name} ep {pos.stage_epoch + 1}")

    def evaluate(self, pipeline) -> tuple[dict, Evaluation | None, Evaluation | None]:
        """(metrics, val, ema_val): rank 0 evaluates the raw (and EMA) weights and every
        rank takes its metrics ("val_*", "ema_val_*"), so the plateau, stop and best
        decisions are the same on all ranks by construction (bf16 or cuDNN autotuning could
        otherwise make two ranks see different accuracies and part ways). The per-image
        results (what val_outcomes.json keeps) exist on rank 0 only."""
        engine, data, batch = self.engine, self.data, self.cfg.train.eval_batch_size
        metrics, val, ema_val = {}, None, None
        if self.dist.is_main:
            val = engine.evaluate_per_image(engine.module, data.val_images, data.val_labels,
                                            pipeline, batch)
            metrics.update(val.metrics("val_"))
            if engine.ema is not None:
                ema_val = engine.evaluate_per_image(engine.ema.module, data.val_images,
                                                    data.val_labels, pipeline, batch)
                metrics.update(ema_val.metrics("ema_val_"))
        return self.dist.broadcast_object_from_main(metrics), val, ema_val

    def refresh_reports(self, final: bool = False) -> None:
        """Plots and report.html, in the background (a refresh still running is not queued
        twice); `final` waits for it. A failure here never stops training."""
        if self.dist.is_main and (self.cfg.track.plots or self.cfg.track.report):
            self.writer.report(self._write_reports)
            if final:
                self.writer.wait()

    def _write_reports(self) -> None:
        try:
            from lowres.track.plots import write_run_plots  # matplotlib: lazily
            from lowres.track.report import write_run_report

            if self.cfg.track.plots:
                write_run_plots(self.log.dir)
            if self.cfg.track.report:
                write_run_report(self.log.dir)
        except Exception as exc:  # noqa: BLE001 (a report bug must not end a training run)
            self.log.event("warning", message=f"report/plots failed: {type(exc).__name__}: {exc}")
            print(f"lowres: warning: could not write plots/report ({exc})", file=sys.stderr)

    # ------------------------------------------------------------------ checkpoints
    def data_meta(self) -> dict:
        index = self.data.index
        return {"class_names": self.data.class_names, "mean": self.data.mean, "std": self.data.std,
                "image_shape": list(self.data.image_shape), "layout": index.layout,
                "root": str(index.root), "fingerprint": self._fingerprint}

    def state(self, kind: str, position: Position | None = None,
              partial: EpochProgress | None = None) -> dict:
        """The checkpoint contents (run/checkpoint.py lists every key); live tensors."""
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
            "position": (position or self.position).as_dict(),
            "partial": partial.as_dict() if partial else None,
            "rng": rng.capture(self.aug_gen, self.policy.device),
            "elapsed": self.elapsed,
            "budget": self.budget.state_dict() if self.budget else None,
            "best": dict(self.best),
            "nan_skips": self.engine.nan_guard.skipped(),
        }

    def save_last(self, position: Position | None = None, partial: EpochProgress | None = None) -> None:
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
        self.save_last(self.position.at_step(progress.step),
                       progress.summed(self.dist.all_reduce_sum))

    def save_best(self, use_ema: bool) -> None:
        if not self.dist.is_main:
            return
        weights = self.engine.ema.state_dict() if use_ema else self.engine.module.state_dict()
        state = snapshot({"kind": "best", "config": config_mod.to_dict(self.cfg),
                          "data": self.data_meta(), "model": weights, "ema": None,
                          "position": self.position.as_dict(), "best": dict(self.best),
                          "weights": "ema" if use_ema else "raw"})
        require_finite(state["model"], "best.pt")  # a broken best.pt never replaces a good one
        path = self.log.checkpoint_dir / "best.pt"
        hint = self.log.resume_hint
        self.writer.checkpoint(lambda: checkpoint.save(state, path, then=hint))

    def restore(self, state: dict) -> None:
        self.engine.module.load_state_dict(state["model"])
        if self.engine.ema is not None:
            self.engine.ema.load_state_dict(state["ema"] or state["model"])
        self.position = Position.from_dict(state["position"])
        stage = None if self.finished else self.stage
        if state["optimizer"] is not None and stage is not None:
            # A stage that carries its optimizer over has the same kind as the one before
            # (config validation), so the current stage's settings rebuild either one.
            # (numeric_lr: at a boundary before a stage with `lr: find`, which sets it at start)
            self.optimizer = build_optimizer(self.engine.module, lr_find.numeric_lr(stage.optimizer))
            self.optimizer.load_state_dict(state["optimizer"])
        if stage is not None and self.position.started:
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
        offset = (self.position.epoch * 100_003 + self.position.step) * 7919 + self.dist.rank
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
