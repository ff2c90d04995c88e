"""`lowres train`, top to bottom: set up a run (new or resumed), train its stages epoch
by epoch, and leave it resumable whatever happens.

Reading order: `train` checks the inputs and builds the `Run` (train/run_state.py); `_train`
is the loop over stages and epochs; `end_epoch` is everything between two epochs
(evaluate, record, schedule, best.pt, stop rule); `_pause` and `_finish` are the two ways
out. The `Position` (train/run_state.py) moves only here.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

from lowres import config as config_mod
from lowres.data.prepare import prepare
from lowres.basics import compat
from lowres.basics.disk import DiskFullError
from lowres.basics.durations import format_duration
from lowres.errors import LowresError
from lowres.basics.intervals import interval_columns
from lowres.run import copies as run_copy
from lowres.run import lock as run_lock
from lowres.run.outcomes import record_val_outcomes
from lowres.train import distributed
from lowres.train.data_fingerprint import check_same_data
from lowres.train.device import resolve
from lowres.train.engine import EpochProgress
from lowres.train.nan_guard import NonFiniteLoss
from lowres.run.directory import (absolute_data_paths, check_new_run_dir, default_run_dir,
                                  load_resume_config, remove_torn_writes)
from lowres.train.run_state import Run, RunResult
from lowres.train.selection import advance as advance_best
from lowres.train.selection import warn_small_selection_split
from lowres.train.step_control import StepControl, StopFlag
from lowres.train.time_budget import plan_budget, rebudget


def train(config_path: str | Path | None, overrides: list[str] = (), run_dir: str | Path | None = None,
          resume: str | Path | None = None, time_limit: float | None = None,
          pause_after_epochs: int | None = None, pause_after_steps: int | None = None,
          dry_run: bool = False, out=None,
          on_epoch_end: Callable[[dict], str | None] | None = None) -> RunResult | None:
    """Train from a config file (or resume a run directory). Returns None for a dry run.

    on_epoch_end(row): called on rank 0 after each epoch's metrics row is written and its
    last.pt saved (row: that metrics.csv row as a dict). A non-empty string it returns stops
    the run there, resumable, with that string as the stop reason in events.jsonl and
    status.json (`lowres tune`'s pruner returns "pruned")."""
    out = out or sys.stdout
    dist = distributed.init()
    if dist.is_main:  # a torch newer than any tested: one line, once per process
        compat.warn_if_newer_torch(sys.stderr)
    if not dist.is_main:  # one voice: rank 0 prints and shows progress
        out = open(os.devnull, "w")  # noqa: SIM115
        os.environ["LOWRES_PROGRESS"] = "0"
    lock, training = None, False
    try:
        state, note = None, None
        moved_from = None
        if resume is not None:
            run_dir, moved_from = _resume_dir(Path(resume), run_dir, dry_run, dist)
            if dist.is_main and not dry_run and run_dir.is_dir():
                lock = run_lock.RunLock(run_dir).acquire()  # before anything is read or cut
            cfg, state, note = load_resume_config(run_dir, list(overrides))
        else:
            if config_path is None:
                raise LowresError("give a CONFIG.yaml to train, or --resume RUN_DIR")
            cfg = config_mod.load(config_path, list(overrides))
            absolute_data_paths(cfg)
            run_dir = Path(run_dir) if run_dir else default_run_dir(cfg, config_path)
            if not dry_run and dist.is_main:
                check_new_run_dir(run_dir)  # and again under the lock, once inputs are valid
        if lock is not None:
            remove_torn_writes(run_dir)
        if lock is not None and lock.note():
            print(f"lowres: note: {lock.note()}", file=sys.stderr)
        if note:
            print(f"lowres: warning: {note}", file=sys.stderr)
        data = prepare(cfg.data, cfg.seed)
        if state is not None:
            check_same_data(state, data, run_dir)
        policy = resolve(cfg.train, cfg.data, data.train_images.nbytes, dist.local_rank,
                         dist.world_size)
        # train.budget scales the stages' epochs now, before any schedule exists (and, for a
        # new run, before its directory does: a budget too short leaves nothing behind).
        budget = plan_budget(cfg, data, policy, state, dist, out) if cfg.train.budget else None
        if resume is None and not dry_run and dist.is_main:
            # Only now, with config and data known good, does the new directory appear:
            # bad input leaves nothing behind.
            lock = run_lock.RunLock(run_dir).acquire()
            check_new_run_dir(run_dir, lock_is_ours=True)
        run = Run(cfg, run_dir, data, policy, dist) if not dry_run else None
        if run is not None:
            run.budget = budget
        if dry_run:
            from lowres.train.dry_run import dry_run as do_dry_run

            do_dry_run(cfg, data, policy, run_dir, out)
            return None
        if resume is not None:
            run.resumed_note = "; ".join(n for n in (note, lock and lock.note()) if n) or None
            run.moved_from = moved_from
        flag = StopFlag(time_limit, pause_after_epochs, pause_after_steps)
        training = True
        result = _train(run, state, list(overrides), flag, out, resumed=resume is not None,
                        on_epoch_end=on_epoch_end)
        # The ranks leave together: one whose peer has already exited can hang in
        # destroy_process_group (seen with gloo on torch 2.4, after a pause).
        dist.barrier()
        return result
    except LowresError as exc:
        if moved_from is not None and not training and len(exc.args) == 1:
            # The copy goes (below): the one line names the run given, keeping its kind.
            exc.args = (str(exc.args[0]).replace(str(run_dir), str(moved_from)),)
        raise
    finally:
        if lock is not None:
            lock.release()
        if moved_from is not None and not training and dist.is_main:
            # Refused (or interrupted) before training: the copy goes, so the corrected
            # command finds --run-dir free; the run itself is where it was.
            run_copy.remove_copy(run_dir)
        distributed.shutdown(dist)


def _resume_dir(source: Path, run_dir, dry_run: bool, dist) -> tuple[Path, Path | None]:
    """(the directory to resume in, where it was copied from or None). `--run-dir NEW`
    continues a copy of the run in NEW (the way on from a read-only input folder); without
    it the run goes on in place, which needs a writable directory."""
    if run_dir is None or Path(run_dir).resolve() == source.resolve():
        if not dry_run:
            run_copy.require_writable_run(source)
        return source, None
    if dry_run:  # nothing is written: check the source as it is
        return source, None
    target = Path(run_dir)
    if dist.is_main:
        run_copy.copy_run(source, target)
    dist.barrier()  # every rank reads the copy only once it is whole
    return target, source


def _train(run: Run, state: dict | None, overrides: list[str], flag: StopFlag, out,
           resumed: bool, on_epoch_end: Callable[[dict], str | None] | None = None) -> RunResult:
    cfg, log, dist = run.cfg, run.log, run.dist
    _start_or_resume(run, state, overrides, resumed)
    if run.budget is not None:
        run.budget.start_clock()
    log.set_status("running")
    print(f"lowres: training {log.dir} on {run.policy.describe_choices()}", file=out)
    flag.install()
    control = StepControl(flag, cfg.train.checkpoint_minutes, dist)
    session_epochs = 0
    try:
        while not run.finished:
            if not run.position.started:
                run.start_stage()
            pipeline = run.pipeline()
            stage_ended = False
            while not stage_ended:
                t0 = time.perf_counter()
                progress = run.train_epoch(pipeline, control)
                run.elapsed += time.perf_counter() - t0
                if progress.cut:
                    # The checkpoint holds the epoch's sums over all ranks (rank 0 resumes them).
                    run.partial = progress.summed(dist.all_reduce_sum)
                    run.position.cut_at(progress.step)
                    return _pause(run, flag, out)
                run.partial = None
                stage_ended = end_epoch(run, progress, time.perf_counter() - t0, pipeline, out)
                session_epochs += 1
                run.save_last()
                control.saved()
                run.refresh_reports()
                asked = on_epoch_end(run.last_row) if on_epoch_end and dist.is_main else None
                if dist.broadcast_flag(bool(asked)) and not run.finished:
                    flag.reason = asked or "stopped by rank 0's epoch hook"
                    return _pause(run, flag, out)
                if dist.broadcast_flag(flag.epoch_done(session_epochs)) and not run.finished:
                    flag.reason = flag.reason or "stopped by another rank"
                    return _pause(run, flag, out)
        return _finish(run, out)
    except BaseException as exc:
        _record_failure(run, exc)
        raise
    finally:
        flag.restore()
        run.writer.close()


def _start_or_resume(run: Run, state: dict | None, overrides: list[str], resumed: bool) -> None:
    cfg, log, dist = run.cfg, run.log, run.dist

    def save_config() -> None:  # a resume's overrides become the run's config
        if dist.is_main:
            config_mod.save(cfg, log.dir / "config.yaml")

    if resumed and run.moved_from is not None:
        log.event("moved", source=str(run.moved_from), run_dir=str(log.dir))
    if resumed and run.resumed_note:
        log.event("warning", message=run.resumed_note)
    if resumed and state is None:
        # Killed before its first checkpoint: nothing to continue, so it starts over in its
        # own directory (a metrics row of an epoch whose checkpoint never landed goes).
        log.truncate_metrics(0)
        log.event("resume", epoch=0, stage=0, step=0, overrides=overrides,
                  world_size=dist.world_size, note="no checkpoint yet: started over")
        if overrides:
            save_config()
    elif state is None:
        save_config()  # first: until config.yaml lands, the directory holds no run
        log.write_env(str(run.policy.device))
        log.event("run_start", device=run.policy.describe(), choices=list(run.policy.reasons),
                  train_images=len(run.data.train_labels),
                  val_images=len(run.data.val_labels), classes=run.data.num_classes,
                  world_size=dist.world_size)
        if run.budget is not None:
            log.event("budget", epoch=0, stage=0, epochs=[s.epochs for s in cfg.stages],
                      planned=run.budget.planned, seconds=run.budget.seconds,
                      epoch_seconds=round(run.budget.epoch_seconds, 3))
    else:
        run.restore(state)
        log.truncate_metrics(run.position.epoch)
        if overrides:
            save_config()
        log.event("resume", epoch=run.position.epoch, stage=run.position.stage,
                  step=run.position.step, overrides=overrides, world_size=dist.world_size)


def end_epoch(run: Run, progress: EpochProgress, seconds: float, pipeline, out) -> bool:
    """Everything between two epochs, in order: sum the epoch over the ranks, evaluate,
    write the metrics row, step the schedule, choose best.pt, apply the stop rule. True when
    the stage ends here."""
    cfg, pos, data, log = run.cfg, run.position, run.data, run.log
    sums = progress.summed(run.dist.all_reduce_sum)
    val_metrics, val, ema_val = run.evaluate(pipeline)
    last_lr = run.schedule.lr_at((pos.stage_epoch + 1) * run.loader.steps_per_epoch - 1)
    pos.finish_epoch()
    # The metrics.csv row: every name is a column of run/metrics.py.
    row = {"epoch": pos.epoch, "stage": pos.stage, "stage_name": run.stage_name,
           "stage_epoch": pos.stage_epoch, "lr": last_lr, **sums.metrics(), **val_metrics,
           "seconds": seconds, "elapsed": run.elapsed,
           **interval_columns(val_metrics.get("val_acc"), len(data.val_labels))}
    log.append_metrics(row)
    run.last_row = row  # for train()'s on_epoch_end hook
    run.tensorboard.log_epoch(row)

    dropped = run.schedule.epoch_end(row)
    if dropped:
        log.event("lr_drop", epoch=pos.epoch, stage=pos.stage,
                  lr=run.schedule.lr_at(pos.stage_epoch * run.loader.steps_per_epoch))
    # best.pt: the raw and EMA weights compete under the config's rule (train/selection.py).
    rule, window = cfg.train.checkpoint_rule, cfg.train.checkpoint_window
    run.best, choice = advance_best(run.best, row, rule, window)
    if choice is not None:
        run.save_best(choice.weights == "ema")
        log.event("best", epoch=pos.epoch, val_acc=choice.val_acc, weights=choice.weights,
                  rule=rule, score=choice.score)
    elif row.get("val_acc") is None and row.get("ema_val_acc") is None:
        run.save_best(False)  # no validation split: best.pt is the latest weights
    if log.enabled and val is not None and len(val.correct):
        chosen = (ema_val if choice.weights == "ema" else val) if choice is not None else None
        record_val_outcomes(log.dir, data.val_images, data.val_labels, pos.epoch,
                            val.correct, chosen.correct if chosen is not None else None)
    if pos.epoch == 1 and log.enabled:
        warn_small_selection_split(log, len(data.val_labels), rule)

    if run.budget is not None:  # the plan scaled again from the measured epochs
        rebudget(run, out)
    reason = run.stop.update(pos.stage_epoch, dropped, row.get("val_acc"))
    print(epoch_line(row, run.stage.epochs), file=out, flush=True)
    if reason is None:
        return False
    print(f"  {run.stage_name} ends: {reason}", file=out, flush=True)
    log.event("stop", epoch=pos.epoch, stage=pos.stage, reason=reason)
    log.event("stage_end", epoch=pos.epoch, stage=pos.stage)
    pos.finish_stage()
    return True


def epoch_line(row: dict, stage_epochs: int) -> str:
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


def _finish(run: Run, out) -> RunResult:
    log, pos, best = run.log, run.position, run.best["val_acc"]
    run.writer.wait_checkpoints()  # "finished" only once last.pt is on disk
    log.event("run_end", epoch=pos.epoch, best_val_acc=best, elapsed=run.elapsed)
    log.set_status("finished", epochs=pos.epoch, best_val_acc=best)
    run.refresh_reports(final=True)
    print(f"lowres: finished {pos.epoch} epochs in {format_duration(run.elapsed)}"
          + (f", best val acc {best:.4f} (epoch {run.best['epoch']})" if best is not None else "")
          + f"\n  run directory: {log.dir}\n  report: {log.dir / 'report.html'}", file=out)
    return RunResult(log.dir, "finished", pos.epoch, best)


def _pause(run: Run, flag: StopFlag, out) -> RunResult:
    log, pos = run.log, run.position
    run.save_last()
    run.writer.wait_checkpoints()  # the resume command below must find last.pt
    log.event("interrupted", epoch=pos.epoch, stage=pos.stage, step=pos.step, reason=flag.reason)
    log.set_status("stopped", reason=flag.reason, resume=f"lowres train --resume {log.dir}")
    run.refresh_reports(final=True)
    print(f"lowres: {flag.reason}; saved {log.checkpoint_dir / 'last.pt'} "
          f"(epoch {pos.epoch}, step {pos.step}).\n"
          f"  resume with: lowres train --resume {log.dir}", file=out)
    return RunResult(log.dir, "stopped", pos.epoch, run.best["val_acc"], reason=flag.reason)


def _record_failure(run: Run, exc: BaseException) -> None:
    """status.json says how the run ended: stopped (resumable: a second Ctrl-C, a full
    disk, a NaN) or failed."""
    try:
        run.writer.close()  # what was submitted still lands; its own errors come second
    except Exception:  # noqa: BLE001 (the first error is the one to report)
        pass
    if not (run.dist.is_main and run.log.dir.exists()):
        return
    try:  # on a full disk this write fails too: the first error is the one to see
        if isinstance(exc, (KeyboardInterrupt, DiskFullError, NonFiniteLoss)):
            run.log.set_status("stopped", reason=str(exc),
                               resume=f"lowres train --resume {run.log.dir}")
        else:
            run.log.set_status("failed")
    except (OSError, LowresError):
        pass
