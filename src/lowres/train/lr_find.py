"""The LR range test (Leslie Smith, 2015; fastai's `lr_find`): `lowres lr-find CONFIG`,
`lowres.lr_find(...)` and `optimizer.lr: find` in a stage.

A copy of the model trains for a number of steps with the LR growing exponentially from
`start` to `end`, with the stage's own optimizer, augmentation, label smoothing, precision
and channels_last (the engine's real `train_step`); the loss is smoothed by an exponential
moving average with bias correction (beta 0.98), and the test stops early once the
smoothed loss exceeds 4x its best (diverged) or a loss is not finite.

The suggestion, by the `valley` rule (fastai's default): over the smoothed losses (the first
tenth of the steps left out, while the average settles, and nothing from the divergence
on), the longest decreasing run of points (the longest strictly decreasing subsequence)
and the LR halfway along it. Two more rules are reported beside it: `steep` (the steepest
descent of the smoothed loss per log-LR) and `minimum` (the LR of the lowest smoothed loss,
divided by 10). Suggestions are rounded to two significant digits.

Nothing here touches a run: the test trains its own copy of the model (a fresh one from
the CLI and the API; the run's weights as they stand at a stage's start for
`optimizer.lr: find`), draws augmentation from its own generator, and runs inside
`torch.random.fork_rng`, so the random streams training uses are as they were: a run with
`lr: find` is as reproducible as one with a number.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lowres.augment import build_pipeline
from lowres.augment.base import forced_masking
from lowres.basics.progress import bar
from lowres.config import Config, StageConfig
from lowres.data.loader import EpochLoader
from lowres.data.prepare import Prepared
from lowres.errors import LowresError
from lowres.train.device import DevicePolicy, intended_sync
from lowres.train.engine import Engine
from lowres.train.optim import build_optimizer, set_lr

FIND = "find"  # the value of optimizer.lr that asks for a range test at the stage's start
DEFAULT_START, DEFAULT_END, DEFAULT_STEPS = 1e-6, 10.0, 100
BETA = 0.98  # the loss's moving average (fastai, Smith)
DIVERGED = 4.0  # stop once the smoothed loss exceeds this many times its best
MIN_POINTS = 3  # usable points a rule needs
SEED_OFFSET = 104_729  # the test's augmentation stream, apart from training's


RULES = {  # each rule's reason, as the suggestion line gives it (the functions: `suggest`)
    "valley": "halfway along the longest descent of the smoothed loss (valley rule)",
    "steep": "the steepest descent of the smoothed loss (steep rule)",
    "minimum": "a tenth of the LR of the lowest smoothed loss (minimum rule)",
}
DEFAULT_RULE = "valley"


@dataclass
class LRFinderResult:
    """What a range test measured and suggests. `plot()` shows it (inline in Jupyter)."""

    lrs: list[float]  # the LR of each step taken
    losses: list[float]  # each step's training loss (NaN where it was not finite)
    smoothed: list[float]  # the bias-corrected moving average of the losses
    suggestion: float  # by `rule`
    rule: str  # a key of RULES
    suggestions: dict[str, float] = field(default_factory=dict)  # every rule's suggestion
    start: float = DEFAULT_START
    end: float = DEFAULT_END
    steps: int = DEFAULT_STEPS  # steps asked for (len(lrs) is fewer when it stopped early)
    stopped: str | None = None  # why it stopped early, None when it ran every step
    seconds: float = 0.0
    plot_path: Path | None = None

    def __repr__(self) -> str:
        return (f"LRFinderResult(suggestion={self.suggestion:g}, rule='{self.rule}', "
                f"{len(self.lrs)} steps from {self.start:g} to {self.lrs[-1]:g}"
                + (f", plot '{self.plot_path}'" if self.plot_path else "") + ")")

    def line(self) -> str:
        """The one line that says what to use and why."""
        return f"suggested lr {self.suggestion:g}: {RULES[self.rule]}"

    def others(self) -> str:
        return ", ".join(f"{name} {value:g}" for name, value in self.suggestions.items()
                         if name != self.rule)

    def figure(self):
        """Loss against LR (log scale), raw and smoothed, with the suggestion marked: an Agg
        Figure (lowres.track.plots), no pyplot."""
        from lowres.track.plots import new_figure

        fig, ax = new_figure()
        ax.plot(self.lrs, self.losses, color="0.75", linewidth=0.8, label="loss")
        ax.plot(self.lrs, self.smoothed, color="tab:blue", linewidth=1.6, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        if finite:  # the diverged tail would flatten the interesting part
            low, first = min(finite), finite[0]
            span = max(first - low, 0.05 * abs(first), 1e-3)
            ax.set_ylim(low - 0.15 * span, first + 0.5 * span)
        styles = {"valley": "tab:red", "steep": "tab:orange", "minimum": "tab:green"}
        for name, lr in self.suggestions.items():
            ax.axvline(lr, color=styles.get(name, "0.4"),
                       linestyle="-" if name == self.rule else ":",
                       linewidth=1.4 if name == self.rule else 1.0,
                       label=f"{name} {lr:g}" + (" (suggested)" if name == self.rule else ""))
        ax.set_title(f"LR range test: suggested lr {self.suggestion:g} ({self.rule})", fontsize=10)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        ax.grid(True, which="both", alpha=0.2)
        return fig

    def save_plot(self, path: str | Path) -> Path:
        from lowres.track.plots import save_figure

        self.plot_path = save_figure(self.figure(), Path(path))
        return self.plot_path

    def plot(self):
        """The figure, shown inline in Jupyter (and then None), else returned."""
        from lowres.track.plots import shown_inline

        return shown_inline(self.figure())


# ---------------------------------------------------------------------------- the rules
def usable(lrs: list[float], smoothed: list[float], steps: int) -> tuple[list[float], list[float]]:
    """The points the rules read: without the first tenth of the steps asked for (the
    average settling) and without anything from the first non-finite value on."""
    skip = steps // 10
    points = []
    for lr, s in zip(lrs[skip:], smoothed[skip:]):
        if not math.isfinite(s):
            break
        points.append((lr, s))
    return [p[0] for p in points], [p[1] for p in points]


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's valley: the longest strictly decreasing subsequence of the losses; the LR
    halfway along it (its start + a third + a sixth of its length)."""
    n = len(losses)
    longest = [1] * n
    best_start, best_end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[best_end] < longest[i]:
                best_end = i
                best_start = best_end - longest[best_end]
    sections = (best_end - best_start) / 3
    return lrs[max(0, best_start + int(sections) + int(sections / 2))]


def steep(lrs: list[float], losses: list[float]) -> float:
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
              for i in range(len(lrs) - 1)]
    return lrs[min(range(len(slopes)), key=slopes.__getitem__)]


def minimum(lrs: list[float], losses: list[float]) -> float:
    return lrs[min(range(len(losses)), key=losses.__getitem__)] / 10


def round_lr(lr: float) -> float:
    """Two significant digits: what a person would write in a config."""
    return float(f"{lr:.2g}")


def suggest(lrs: list[float], smoothed: list[float], steps: int) -> dict[str, float] | None:
    """Every rule's suggestion, or None when too few usable points remain."""
    xs, ys = usable(lrs, smoothed, steps)
    if len(xs) < MIN_POINTS:
        return None
    return {"valley": round_lr(valley(xs, ys)), "steep": round_lr(steep(xs, ys)),
            "minimum": round_lr(minimum(xs, ys))}


def schedule(start: float, end: float, steps: int) -> list[float]:
    """LRs growing exponentially from start to end, both included."""
    return [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]


def check_range(start: float, end: float, steps: int) -> None:
    if not (start > 0 and math.isfinite(start) and math.isfinite(end)):
        raise LowresError(f"lr-find: --start must be a positive number, got {start:g}")
    if start >= end:
        raise LowresError(f"lr-find: --start ({start:g}) must be lower than --end ({end:g}); "
                          f"e.g. --start {DEFAULT_START:g} --end {DEFAULT_END:g}")
    if steps < 2 * MIN_POINTS:
        raise LowresError(f"lr-find: --steps must be at least {2 * MIN_POINTS}, got {steps} "
                          f"(default {DEFAULT_STEPS})")


def numeric_lr(optimizer_cfg):
    """The optimizer config with a number for an `lr: find` the stage has not replaced yet
    (a resume at a stage boundary rebuilds the carried-over optimizer before the stage
    starts; the dry run's one step): the default LR, which no step trains with, since the
    schedule sets every step's LR once the stage has its number."""
    if optimizer_cfg.lr != FIND:
        return optimizer_cfg
    from lowres.config import OptimizerConfig

    return dataclasses.replace(optimizer_cfg, lr=OptimizerConfig.lr)


# ---------------------------------------------------------------------------- the test
def range_test(model: torch.nn.Module, cfg: Config, stage: StageConfig, data: Prepared,
               policy: DevicePolicy, loader: EpochLoader | None = None,
               start: float = DEFAULT_START, end: float = DEFAULT_END,
               steps: int = DEFAULT_STEPS, stage_index: int = 0,
               advice: str = "lower --end (or --start)", desc: str = "lr-find") -> LRFinderResult:
    """Train a deep copy of `model` for up to `steps` steps of `stage` with an exponentially
    growing LR; `model` and every random stream of the caller stay as they were.

    `loader`: the run's loader (world size 1) to share its device-resident images; None
    builds one for this process alone. `advice`: what the one-line error of a range with
    no usable loss tells the user to change."""
    check_range(start, end, steps)
    began = time.perf_counter()
    lrs_planned = schedule(start, end, steps)
    device = policy.device
    if loader is None or loader.world_size != 1:
        loader = EpochLoader(data.train_images, data.train_labels, cfg.train.batch_size, device,
                             policy.resident and loader is None, cfg.seed)
    if loader.steps_per_epoch == 0:
        raise LowresError(f"lr-find: no full batch of {cfg.train.batch_size} in "
                          f"{len(data.train_labels)} training images: lower train.batch_size")
    pipeline = build_pipeline(stage.augment, data.mean, data.std, data.num_classes)
    # Eager: compiling changes the speed, not the losses, and would cost more than the test.
    eager = dataclasses.replace(policy, compile=False, compile_augment=False)
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stopped = None
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(cfg.seed + SEED_OFFSET + stage_index)
        if cuda:
            torch.cuda.manual_seed(cfg.seed + SEED_OFFSET + stage_index)
        engine = Engine(copy.deepcopy(model), eager, cfg.train.label_smoothing)
        engine.train_model.train()
        optimizer = build_optimizer(engine.module, dataclasses.replace(stage.optimizer, lr=start))
        generator = torch.Generator(device=device).manual_seed(
            cfg.seed * 1_000_003 + SEED_OFFSET + stage_index)
        progress = bar(total=steps, desc=desc, unit="step")
        best, avg = math.inf, 0.0
        with forced_masking(policy.augment_masking):
            epoch = 0
            while len(lrs) < steps and stopped is None:
                for x_u8, y in loader.batches(epoch):
                    lr = lrs_planned[len(lrs)]
                    set_lr(optimizer, lr)
                    x, targets = pipeline(x_u8, y, generator)
                    loss, _ = engine.train_step(engine._prepare(x), targets, optimizer)
                    with intended_sync("lr-find: each step's loss"):
                        value = float(loss.item())
                    lrs.append(lr)
                    losses.append(value if math.isfinite(value) else math.nan)
                    if math.isfinite(value) and math.isfinite(avg):
                        avg = BETA * avg + (1 - BETA) * value
                    else:
                        avg = math.nan
                    smoothed.append(avg / (1 - BETA ** len(lrs)))
                    progress.update(1)
                    current = smoothed[-1]
                    if math.isfinite(current):
                        progress.set_postfix_str(f"lr {lr:.3g} loss {current:.3f}")
                        best = min(best, current)
                    if not math.isfinite(current):
                        stopped = f"the loss was not finite at lr {lr:.3g}"
                    elif current > DIVERGED * best:
                        stopped = (f"the smoothed loss passed {DIVERGED:g}x its best at lr "
                                   f"{lr:.3g} (diverged)")
                    if stopped is not None or len(lrs) == steps:
                        break
                epoch += 1
        progress.close()
    if stopped is not None and "diverged" in stopped:
        smoothed[-1] = math.nan  # the diverged point itself is no candidate
    found = suggest(lrs, smoothed, steps)
    if found is None:
        finite = any(math.isfinite(v) for v in losses[steps // 10:])
        what = ("gave no usable loss: it diverged at once" if finite
                else "gave no finite loss")
        raise LowresError(f"the LR range test from {start:g} to {end:g} {what} "
                          f"({len(lrs)} steps, {stopped}): {advice}")
    return LRFinderResult(lrs, losses, [v if math.isfinite(v) else math.nan for v in smoothed],
                          found[DEFAULT_RULE], DEFAULT_RULE, found, start, end, steps, stopped,
                          time.perf_counter() - began)


def fresh_model(cfg: Config, data: Prepared) -> torch.nn.Module:
    """The first stage's model as a new run builds it (same seed, same initial weights)."""
    from lowres.models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model, data.num_classes, in_channels=data.image_shape[0],
                           image_size=data.image_shape[1])


def find_lr(config: str | Path, overrides: list[str] = (), start: float = DEFAULT_START,
            end: float = DEFAULT_END, steps: int = DEFAULT_STEPS,
            plot: str | Path | None = "lr_find.png", out=None) -> LRFinderResult:
    """`lowres lr-find CONFIG`: the range test on the config's first stage (its model,
    data, augmentation and optimizer, from freshly initialised weights). Writes only the
    plot; no run directory."""
    from lowres import config as config_mod
    from lowres.data.prepare import prepare
    from lowres.run.directory import absolute_data_paths
    from lowres.train.device import resolve

    out = out or sys.stdout
    check_range(start, end, steps)
    cfg = config_mod.load(config, list(overrides))
    absolute_data_paths(cfg)
    data = prepare(cfg.data, cfg.seed)
    policy = resolve(cfg.train, cfg.data, data.train_images.nbytes)
    stage = cfg.stages[0]
    o = stage.optimizer
    print(f"lr-find: {cfg.model.name}, {data.num_classes} classes, {len(data.train_labels)} "
          f"train images, batch {cfg.train.batch_size}; stage '{stage.name or 'stage1'}': {o.name}"
          + (f" momentum {o.momentum}" if o.name == "sgd" else "") + f" wd {o.weight_decay}; "
          f"lr {start:g} -> {end:g} over {steps} steps on {policy.device}", file=out, flush=True)
    result = range_test(fresh_model(cfg, data), cfg, stage, data, policy, start=start, end=end,
                        steps=steps)
    if plot is not None:
        result.save_plot(plot)
    print(result.line(), file=out)
    print(f"  other rules: {result.others()}", file=out)
    print(f"  {len(result.lrs)} steps in {result.seconds:.1f} s"
          + (f"; stopped early: {result.stopped}" if result.stopped else "")
          + (f"; plot: {result.plot_path}" if result.plot_path else ""), file=out, flush=True)
    return result
