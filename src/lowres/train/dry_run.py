"""`lowres train CONFIG --dry-run`: check everything, print the plan, train nothing.

Validates the config and the data, builds the model, runs one small batch through the
first stage's augmentation, forward and backward, prints what the run would do and exits
without writing anything.
"""
from __future__ import annotations

import time

import torch

from lowres.augment import build_pipeline
from lowres.config import Config
from lowres.data.loader import batch_bounds
from lowres.data.prepare import Prepared
from lowres.basics.intervals import split_precision_line
from lowres.models import build_model, count_parameters
from lowres.train.device import DevicePolicy
from lowres.train.engine import soft_cross_entropy
from lowres.train.lr_find import numeric_lr
from lowres.train.memory_estimate import STATE_COPIES, estimate
from lowres.train.optim import build_optimizer
from lowres.train.schedules import Schedule
from lowres.train.schedules import StopRule
from lowres.train.schedules import SCHEDULES
from lowres.train.selection import small_split_warning

DRY_RUN_BATCH = 8  # enough for batch norm, small enough to be quick for any model


def dry_run(cfg: Config, data: Prepared, policy: DevicePolicy, run_dir, out) -> None:
    torch.manual_seed(cfg.seed)
    c, h, w = data.image_shape
    model = build_model(cfg.model, data.num_classes, in_channels=c, image_size=h).to(policy.device)
    n = min(DRY_RUN_BATCH, len(data.train_labels))
    x_u8 = torch.from_numpy(data.train_images[:n]).to(policy.device)
    y = torch.from_numpy(data.train_labels[:n]).to(policy.device)
    pipeline = build_pipeline(cfg.stages[0].augment, data.mean, data.std, data.num_classes)
    gen = torch.Generator(device=policy.device).manual_seed(cfg.seed)
    x, targets = pipeline(x_u8, y, gen)
    model.train()
    with policy.autocast():
        logits = model(x)
    loss = soft_cross_entropy(logits.float(), targets, cfg.train.label_smoothing)
    loss.backward()
    build_optimizer(model, numeric_lr(cfg.stages[0].optimizer)).step()

    steps = len(batch_bounds(len(data.train_labels), cfg.train.batch_size))
    p = lambda text="": print(text, file=out)  # noqa: E731
    p(f"dry run: nothing is written; the run would go to {run_dir}")
    p(f"data: {data.index.root} ({data.index.layout} layout), {data.num_classes} classes, "
      f"{w}x{h}x{c}, {len(data.train_labels)} train / {len(data.val_labels)} val images")
    p(f"  mean {_fmt(data.mean)}  std {_fmt(data.std)}")
    p(f"  {split_precision_line(len(data.val_labels))}; best.pt by "
      f"train.checkpoint_rule={cfg.train.checkpoint_rule}")
    warning = small_split_warning(len(data.val_labels), cfg.train.checkpoint_rule)
    if warning:
        p(f"  note: {warning}")
    if 0 < len(data.val_labels) < 20 * data.num_classes and any(
            SCHEDULES[s.scheduler.name].epoch_end is not None  # it reacts to val metrics
            or s.stop.patience is not None for s in cfg.stages):
        p(f"  note: only {len(data.val_labels)} val images drive the plateau/stop decisions; "
          f"accuracy on so few is noisy (raise data.val_fraction)")
    p(f"model: {cfg.model.name} (stem {cfg.model.stem}, head {cfg.model.head}, dropout "
      f"{cfg.model.dropout}, init {cfg.model.init}), {count_parameters(model):,} parameters")
    p(f"device: {policy.describe_choices()}")
    memory = estimate_memory(model, data.image_shape, {st.optimizer.name for st in cfg.stages},
                             bool(cfg.train.ema), policy.amp_dtype is not None or policy.device.type == "cpu")
    p(f"memory: {memory.line(cfg.train.batch_size)}")
    if policy.gpu is not None:
        resident = data.train_images.nbytes + data.train_labels.nbytes if policy.resident else 0
        here = memory.line(cfg.train.batch_size, policy.gpu.memory_bytes, "it", resident)
        p(f"  on this {policy.gpu.short_name}: {here}")
        p(f"  speed: {_seconds_per_epoch(model, data, cfg, policy, steps)}")
    p(f"batch {cfg.train.batch_size}, {_plural(steps, 'step')} per epoch, label smoothing "
      f"{cfg.train.label_smoothing}" + (f", EMA {cfg.train.ema}" if cfg.train.ema else ""))
    for i, stage in enumerate(cfg.stages):
        o, s = stage.optimizer, stage.scheduler
        p(f"stage {i + 1} '{stage.name or f'stage{i + 1}'}': "
          f"{'fresh' if stage.reset_optimizer else 'carried-over'} {o.name} lr {o.lr} wd "
          f"{o.weight_decay}" + (f" momentum {o.momentum}" if o.name == "sgd" else "")
          + (" nesterov" if o.nesterov else "") + f"; scheduler {s.name}")
        p(f"  stops: {StopRule(stage).describe()}")
        schedule = Schedule(s, 1.0 if o.lr == "find" else o.lr, steps, stage.epochs)
        if o.lr == "find":
            p("  LR: chosen by an LR range test at the stage's start (train/lr_find.py; "
              "`lowres lr-find` runs it alone)" + (
                  ", then per epoch x " + ", ".join(f"{lr:.3g}" for lr in schedule.epoch_lrs()[:12])
                  + (" ..." if stage.epochs > 12 else "") if schedule.known_in_advance else ""))
        elif schedule.known_in_advance:
            lrs = schedule.epoch_lrs()
            shown = ", ".join(f"{lr:.4g}" for lr in lrs[:12]) + (" ..." if len(lrs) > 12 else "")
            p(f"  LR per epoch: {shown}")
        else:
            p(f"  LR: {o.lr}, lowered x{s.factor} when {s.monitor} stalls for {s.patience} "
              f"epochs (cooldown {s.cooldown}); not knowable in advance")
        augment = build_pipeline(stage.augment, data.mean, data.std, data.num_classes)
        for line in augment.describe().splitlines():
            p(f"  augment: {line}")
    p(f"one batch of {n}: forward + backward OK, loss {loss.item():.4f}")


def estimate_memory(model, image_shape, optimizers: set[str], ema: bool, amp: bool):
    """The stage whose optimizer keeps the most state decides (Adam's two copies vs SGD's one)."""
    heaviest = max(optimizers, key=lambda name: STATE_COPIES.get(name, 2))
    return estimate(model, image_shape, heaviest, ema, amp)


def _seconds_per_epoch(model, data: Prepared, cfg: Config, policy: DevicePolicy, steps: int,
                       timed: int = 5) -> str:
    """Seconds per epoch from a few timed full-batch steps (eager: torch.compile, when on,
    is usually faster once compiled; augmentation not included)."""
    batch = min(cfg.train.batch_size, len(data.train_labels))
    x = torch.randn(batch, *data.image_shape, device=policy.device)
    y = torch.randint(0, data.num_classes, (batch,), device=policy.device)
    if policy.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, numeric_lr(cfg.stages[0].optimizer))
    scaler = torch.amp.GradScaler("cuda", enabled=policy.needs_scaler)
    try:
        for i in range(2 + timed):  # two warm-up steps (cuDNN autotuning, allocator)
            if i == 2:
                torch.cuda.synchronize(policy.device)
                start = time.perf_counter()
            with policy.autocast():
                loss = torch.nn.functional.cross_entropy(model(x).float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize(policy.device)
    except torch.OutOfMemoryError:
        return f"out of memory at batch {batch} (see the memory line above)"
    per_step = (time.perf_counter() - start) / timed
    return (f"~{per_step * steps:.0f} s per epoch ({per_step * 1000:.1f} ms per step of {batch}, "
            f"eager, {timed} timed steps)")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"
