"""The end of an epoch: evaluate, update the schedule and stop rule, record everything."""
from __future__ import annotations

import math
import sys

from lowres.intervals import interval_columns
from lowres.track.outcomes import record_val_outcomes
from lowres.train.engine import EpochProgress
from lowres.train.selection import advance as advance_best
from lowres.train.selection import warn_small_selection_split


def publish_epoch(run, progress: EpochProgress, seconds: float,
                  pipeline) -> tuple[dict, str | None]:
    """Evaluate, write the metrics row and events, save best.pt; (the row, stop reason or None)."""
    cfg, pos, data = run.cfg, run.position, run.data
    stage_i = pos["stage"]
    stage = cfg.stages[stage_i]
    epoch_sums = progress.summed(run.dist.all_reduce_sum)
    loss_sum, correct, seen = epoch_sums.loss_sum, epoch_sums.correct, epoch_sums.seen
    val_loss, val_acc, ema_loss, ema_acc, val, ema_val = _evaluate_on_main(run, pipeline)
    lr = run.schedule.lr_at((pos["stage_epoch"] + 1) * run.loader.steps_per_epoch - 1)
    pos["epoch"] += 1
    pos["stage_epoch"] += 1
    train_loss = loss_sum / max(seen, 1)
    train_acc = correct / max(seen, 1)
    row = {
        "epoch": pos["epoch"], "stage": stage_i, "stage_name": stage.name or f"stage{stage_i + 1}",
        "stage_epoch": pos["stage_epoch"], "lr": lr, "train_loss": train_loss,
        "train_acc": train_acc, "val_loss": _num(val_loss), "val_acc": _num(val_acc),
        "ema_val_loss": _num(ema_loss), "ema_val_acc": _num(ema_acc),
        "images_per_s": seen / progress.seconds if progress.seconds > 0 else None,
        "seconds": seconds, "elapsed": run.elapsed,
        **interval_columns(val_acc, len(data.val_labels)),
    }
    run.log.append_metrics(row)
    run.tensorboard.log_epoch(row)
    metrics = {"val_acc": val_acc, "val_loss": val_loss, "train_loss": train_loss,
               "train_acc": train_acc}
    dropped = run.schedule.epoch_end(metrics)
    if dropped:
        run.log.event("lr_drop", epoch=pos["epoch"], stage=stage_i,
                      lr=run.schedule.lr_at(pos["stage_epoch"] * run.loader.steps_per_epoch))
    # best.pt: the raw and EMA weights compete under the config's rule (train/selection.py).
    rule, window = cfg.train.checkpoint_rule, cfg.train.checkpoint_window
    run.best, choice = advance_best(run.best, row, rule, window)
    if choice is not None:
        run.save_best(choice.weights == "ema")
        run.log.event("best", epoch=pos["epoch"], val_acc=choice.val_acc, weights=choice.weights,
                      rule=rule, score=choice.score)
    elif _num(val_acc) is None and _num(ema_acc) is None:
        run.save_best(False)  # no validation split: best.pt is the latest weights
    if run.log.enabled and val is not None and len(val.correct):
        chosen = (ema_val if choice.weights == "ema" else val) if choice is not None else None
        record_val_outcomes(run.log.dir, data.val_images, data.val_labels, pos["epoch"],
                            val.correct, chosen.correct if chosen is not None else None)
    if pos["epoch"] == 1 and run.log.enabled:
        warn_small_selection_split(run.log, len(data.val_labels), rule)
    return row, run.stop.update(pos["stage_epoch"], dropped, val_acc)


def _evaluate_on_main(run, pipeline):
    """(val_loss, val_acc, ema_loss, ema_acc, val, ema_val). Rank 0 evaluates and every
    rank takes its numbers: the plateau, stop and best decisions are then the same on all
    ranks by construction (bf16 or cuDNN autotuning could otherwise make two ranks see
    different accuracies and part ways). The per-image results (`val`, `ema_val`: what
    val_outcomes.json keeps) exist on rank 0 only."""
    engine, data, bs = run.engine, run.data, run.cfg.train.eval_batch_size
    nan = float("nan")
    values = [nan, nan, nan, nan]
    val = ema_val = None
    if run.dist.is_main:
        val = engine.evaluate_per_image(engine.module, data.val_images, data.val_labels,
                                        pipeline, bs)
        values[:2] = val.loss, val.acc
        if engine.ema is not None:
            ema_val = engine.evaluate_per_image(engine.ema.module, data.val_images,
                                                data.val_labels, pipeline, bs)
            values[2:] = ema_val.loss, ema_val.acc
    val_loss, val_acc, ema_loss, ema_acc = run.dist.broadcast_from_main(values)
    if engine.ema is None:
        ema_loss = ema_acc = None
    return val_loss, val_acc, ema_loss, ema_acc, val, ema_val


def epoch_line(row: dict, stage_epochs: int, dropped_to: float | None = None) -> str:
    """One line per epoch for the terminal and logs."""
    def num(key, fmt):
        return "-" if row.get(key) is None else format(row[key], fmt)
    line = (f"epoch {row['epoch']:>3} {row['stage_name']} {row['stage_epoch']}/{stage_epochs}  "
            f"train loss {num('train_loss', '.4f')} acc {num('train_acc', '.4f')}  "
            f"val loss {num('val_loss', '.4f')} acc {num('val_acc', '.4f')}")
    if row.get("val_acc_low") is not None:  # Wilson 95% for the split's size
        line += f" [{row['val_acc_low']:.3f}-{row['val_acc_high']:.3f}]"
    if row.get("ema_val_acc") is not None:
        line += f" (ema {row['ema_val_acc']:.4f})"
    line += f"  lr {row['lr']:.3g}  {num('images_per_s', '.0f')} img/s  {row['seconds']:.1f}s"
    return line


def _num(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def publish_safely(run, final: bool = False) -> None:
    """Plots and report.html after an epoch, in the background (a refresh still running is
    not queued twice); `final` waits for it. A failure here never stops training."""
    if not run.dist.is_main or not (run.cfg.track.plots or run.cfg.track.report):
        return
    run.writer.report(lambda: _refresh(run))
    if final:
        run.writer.wait()


def _refresh(run) -> None:
    try:
        from lowres.track.plots import write_run_plots  # noqa: PLC0415
        from lowres.track.report import write_run_report  # noqa: PLC0415

        if run.cfg.track.plots:
            write_run_plots(run.log.dir)
        if run.cfg.track.report:
            write_run_report(run.log.dir)
    except Exception as exc:  # noqa: BLE001
        run.log.event("warning", message=f"report/plots failed: {type(exc).__name__}: {exc}")
        print(f"lowres: warning: could not write plots/report ({exc})", file=sys.stderr)
