"""A plan that fits a time budget (`train.budget=5m`, `--budget 5m`).

`--time-limit` stops a run where the clock says and leaves it resumable: the plan's later
stages and the end of its schedules never happen in that session. A budget instead changes
the plan: every stage's epochs are scaled, keeping their proportions, so that the whole
plan, each schedule to its end and the last stage all fit the budget.

How the budget is spent (`TimeBudget`):
- the first epoch's first steps are timed (after a few warm-up steps, which pay for
  allocation, cuDNN's search or a compile), and the plan is scaled then, before the first
  schedule has gone far: an epoch's estimate is its steps at that rate plus the
  evaluation, counted as a third of a training step per validation image batch;
- after every epoch the estimate becomes the measured wall time of the epochs so far
  (training, evaluation and saving), and the plan is scaled again; a stage that already has
  the epochs it is given ends there. A stage under way keeps its schedule's shape: its
  length changes, so a cosine still reaches its end at the stage's new last step;
- the budget is the plan's total, not a session's: the seconds spent so far travel in every
  checkpoint, and a resumed run goes on spending what is left.

The planned epochs (the proportions) are the config's, as written before any scaling; the
scaled ones go into the run's config.yaml and a `budget` event each time they change.
`fit_epochs` is the whole rule, a pure function.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch

from lowres.augment import build_pipeline
from lowres.augment.base import forced_masking
from lowres.basics.durations import format_duration, parse_duration
from lowres import config as config_mod
from lowres.config import Config
from lowres.data.loader import EpochLoader, batch_bounds
from lowres.data.prepare import Prepared
from lowres.errors import ConfigError
from lowres.models import build_model
from lowres.train.device import DevicePolicy
from lowres.train.engine import Engine
from lowres.train.optim import build_optimizer

WARMUP_STEPS = 3  # not timed: first allocations, cuDNN autotuning, a compile
PROBE_STEPS = 20  # timed steps before the first scaling (fewer when an epoch is shorter)
EVAL_STEP_SHARE = 1 / 3  # a forward pass on a batch, against a training step's forward+backward
SLACK = 0.10  # a plan that leaves more of the budget unused than this (or one epoch) grows
WINDOW = 5  # the estimate: the mean of the last epochs measured (stages differ in cost)


def fit_epochs(planned: Sequence[int], done: Sequence[int], stage: int, epoch_seconds: float,
               seconds_left: float, in_epoch: bool = False) -> list[int]:
    """Every stage's epochs (a list like `planned`) for a run that is in `stage` (with an
    epoch under way when `in_epoch`), has trained `done[i]` epochs of stage i, has
    `seconds_left` of its budget and spends `epoch_seconds` on an epoch.

    The whole plan gets T = (epochs done) + floor(seconds_left / epoch_seconds) epochs,
    shared among the stages in proportion to `planned` (largest remainders). Stages that
    are over keep what they did; the stage under way keeps what it has done (and the epoch
    under way), and every later stage at least one epoch (each stage of a plan does
    something: the last is often the short fine-tune that matters most). Epochs over T come
    back from the stages still to run, the one furthest above its share first; when even
    the minimum does not fit, the minimum is returned and the caller says so."""
    n = len(planned)
    done = list(done) + [0] * (n - len(done))
    affordable = math.floor(seconds_left / epoch_seconds + 1e-9) if epoch_seconds > 0 else 0
    total = sum(done[:stage + 1]) + max(0, affordable)
    weight = sum(max(p, 0) for p in planned) or 1
    exact = [max(p, 0) * total / weight for p in planned]
    shares = [math.floor(e) for e in exact]
    by_remainder = sorted(range(n), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[:total - sum(shares)]:
        shares[i] += 1
    low = [done[i] + (1 if i == stage and in_epoch else 0) if i <= stage else 1 for i in range(n)]
    epochs = [done[i] if i < stage else max(shares[i], low[i]) for i in range(n)]
    while sum(epochs) > max(total, sum(low)):
        above = [i for i in range(stage, n) if epochs[i] > low[i]]
        if not above:
            break
        epochs[max(above, key=lambda i: (epochs[i] - exact[i], -i))] -= 1
    return epochs


@dataclass
class TimeBudget:
    """The budget of one run: its total, what it has spent, the planned epochs it scales.
    Checkpointed as `state_dict()`; rank 0's clock decides (the caller broadcasts)."""

    seconds: float
    planned: list[int]
    spent: float = 0.0  # every session's training, evaluation and saving so far
    epoch_seconds: float | None = None  # the estimate in use
    probed: bool = False
    history: list[float] = field(default_factory=list)  # measured seconds of each epoch
    mark: float | None = field(default=None, compare=False)  # this session's clock (not saved)

    def state_dict(self) -> dict:
        return {"seconds": self.seconds, "planned": list(self.planned), "spent": self.spent,
                "epoch_seconds": self.epoch_seconds, "probed": self.probed,
                "history": list(self.history)}

    @classmethod
    def from_state(cls, state: dict) -> TimeBudget:
        return cls(state["seconds"], list(state["planned"]), state["spent"],
                   state["epoch_seconds"], state["probed"], list(state["history"]))

    def probe_estimate(self, step_seconds: float, steps_per_epoch: int, val_images: int,
                       eval_batch: int) -> float:
        """An epoch's seconds from the timed first steps: its training steps, and the
        evaluation as forward passes over the validation batches."""
        eval_batches = math.ceil(val_images / max(1, eval_batch))
        return step_seconds * (steps_per_epoch + EVAL_STEP_SHARE * eval_batches)

    def check_fits_one_epoch(self, epoch_seconds: float, stages: int) -> None:
        """A budget too short for one epoch of every stage is one line, before anything else
        is trained."""
        need = epoch_seconds * stages
        if self.seconds - self.spent < need:
            what = "one epoch" if stages == 1 else f"one epoch of each of its {stages} stages"
            raise ConfigError(
                f"train.budget={format_duration(self.seconds)} is too short for {what} "
                f"(about {format_duration(need)} measured on the first steps): give at least "
                f"{format_duration(math.ceil(need * 1.1))}, or train on fewer images "
                f"(data.per_class, data.classes)")

    def plan(self, done: Sequence[int], stage: int, in_epoch: bool = False,
             spent_now: float = 0.0) -> list[int]:
        """The stages' epochs for what is left (`spent_now`: seconds of an epoch under way)."""
        assert self.epoch_seconds is not None
        return fit_epochs(self.planned, done, stage, self.epoch_seconds,
                          self.seconds - self.spent - spent_now, in_epoch)

    def start_clock(self) -> None:
        self.mark = time.perf_counter()

    def lap(self) -> float:
        """Seconds since the clock started or since the last lap: an epoch's whole wall time
        (training, evaluation, checkpoints, reports)."""
        now = time.perf_counter()
        seconds, self.mark = now - (self.mark if self.mark is not None else now), now
        return seconds

    def measured(self, epoch_wall: float) -> None:
        """One more epoch took `epoch_wall` seconds (training, evaluation, saving): the
        estimate becomes the mean of the last WINDOW epochs measured (recent enough to follow
        a stage whose augmentation costs more, long enough to average the noise out)."""
        self.history.append(epoch_wall)
        self.spent += epoch_wall
        recent = self.history[-WINDOW:]
        self.epoch_seconds = sum(recent) / len(recent)


def probe_step_seconds(cfg: Config, data: Prepared, policy: DevicePolicy) -> float:
    """Seconds of one training step of the first stage (augmentation, forward, backward,
    optimizer), timed over PROBE_STEPS steps after WARMUP_STEPS on a model of its own, before
    the run builds anything: the run's weights, RNG streams and loader are as they would be
    without a budget. Eager, as the run's first steps are; a compiled run speeds up later,
    and the per-epoch re-estimate follows it."""
    device = policy.device
    loader = EpochLoader(data.train_images, data.train_labels, cfg.train.batch_size, device,
                         policy.resident, cfg.seed)
    steps = min(WARMUP_STEPS + PROBE_STEPS, max(loader.steps_per_epoch, 1))
    warmup = min(WARMUP_STEPS, steps - 1)
    stage = cfg.stages[0]
    pipeline = build_pipeline(stage.augment, data.mean, data.std, data.num_classes)
    eager = dataclasses.replace(policy, compile=False, compile_augment=False)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), forced_masking(policy.augment_masking):
        c, h, _w = data.image_shape
        model = build_model(cfg.model, data.num_classes, in_channels=c, image_size=h).to(device)
        engine = Engine(model, eager, cfg.train.label_smoothing)
        engine.train_model.train()
        optimizer = build_optimizer(engine.module, stage.optimizer)
        generator = torch.Generator(device=device).manual_seed(cfg.seed + 7919)
        started, timed = time.perf_counter(), 0
        for i, (x_u8, y) in enumerate(loader.batches(0)):
            if i == steps:
                break
            if i == warmup:
                if cuda:
                    torch.cuda.synchronize(device)
                started, timed = time.perf_counter(), 0
            x, targets = pipeline(x_u8, y, generator)
            engine.train_step(engine._prepare(x), targets, optimizer)
            timed += 1
        if cuda:
            torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / max(timed, 1)


def _epochs_text(epochs: Sequence[int]) -> str:
    return "+".join(str(e) for e in epochs)


def plan_budget(cfg: Config, data: Prepared, policy: DevicePolicy, state: dict | None, dist,
                out) -> TimeBudget:
    """The budget of a run about to train, and its stages' epochs scaled to it in `cfg`
    (before the run builds its schedules, and for a new run before its directory exists, so
    a budget too short is one line that leaves nothing behind). A resumed run goes on with
    the budget its checkpoint holds (a new train.budget given at resume replaces the total,
    not what was spent)."""
    seconds = parse_duration(cfg.train.budget)
    if state is not None and state.get("budget"):
        budget = TimeBudget.from_state(state["budget"])
        budget.seconds = seconds
        return budget
    budget = TimeBudget(seconds, [s.epochs for s in cfg.stages],
                        spent=float(state["elapsed"]) if state is not None else 0.0)
    step = probe_step_seconds(cfg, data, policy) if dist.is_main else 0.0
    step = dist.broadcast_from_main([step])[0]
    steps_per_epoch = len(batch_bounds(len(data.train_labels), cfg.train.batch_size))
    budget.epoch_seconds = budget.probe_estimate(step, steps_per_epoch, len(data.val_labels),
                                                 cfg.train.eval_batch_size)
    position = state["position"] if state is not None else {"stage": 0, "stage_epoch": 0}
    stage = position["stage"]
    budget.check_fits_one_epoch(budget.epoch_seconds, len(cfg.stages) - stage)
    done = [s.epochs for s in cfg.stages[:stage]] + [position["stage_epoch"]]
    epochs = budget.plan(done, stage, in_epoch=True)
    print(f"lowres: budget {format_duration(seconds)}: about {budget.epoch_seconds:.1f} s per "
          f"epoch ({PROBE_STEPS} steps timed): the plan's {_epochs_text(budget.planned)} epochs "
          f"become {_epochs_text(epochs)}", file=out)
    for stage_cfg, n in zip(cfg.stages, epochs):
        stage_cfg.epochs = n
    return budget


def rebudget(run, out) -> None:
    """After an epoch: the estimate follows the measured epochs (each epoch's whole wall
    time, from one epoch end to the next) and, when the plan would overrun the budget or
    leave more than SLACK of it unused, the stages' epochs are scaled again; a change goes
    into config.yaml and a `budget` event. The stage under way keeps its schedule's shape
    over its new length; if it already has the epochs it is given, its stop rule ends it
    now. Every rank takes rank 0's clock."""
    budget, cfg, pos = run.budget, run.cfg, run.position
    budget.measured(run.dist.broadcast_from_main([budget.lap()])[0])
    before = [s.epochs for s in cfg.stages]
    done = before[:pos.stage] + [pos.stage_epoch]
    left = budget.seconds - budget.spent
    needed = (sum(before[pos.stage:]) - pos.stage_epoch) * budget.epoch_seconds
    if left - max(SLACK * left, budget.epoch_seconds) <= needed <= left:
        return  # on course: the plan stays (no schedule is stretched for noise)
    epochs = budget.plan(done, pos.stage)
    if epochs == before:
        return
    for stage_cfg, n in zip(cfg.stages, epochs):
        stage_cfg.epochs = n
    if run.schedule is not None and pos.started:  # the stage under way: same curve, new length
        run.schedule.epochs = epochs[pos.stage]
        run.schedule.total = run.schedule.spe * epochs[pos.stage]
    if run.dist.is_main:
        config_mod.save(cfg, run.log.dir / "config.yaml")
    run.log.event("budget", epoch=pos.epoch, stage=pos.stage, epochs=epochs, were=before,
                  epoch_seconds=round(budget.epoch_seconds, 3), spent=round(budget.spent, 1),
                  left=round(left, 1))
    print(f"  budget: about {budget.epoch_seconds:.1f} s per epoch, {format_duration(max(left, 0))} "
          f"left: the plan's epochs are now {_epochs_text(epochs)} (were {_epochs_text(before)})",
          file=out, flush=True)
