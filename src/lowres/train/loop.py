"""`lowres train`: set up a run (new or resumed), run its stages, leave it resumable."""
from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from pathlib import Path


from lowres import config as config_mod
from lowres.config import Config
from lowres.data.prepare import prepare
from lowres.durations import format_duration
from lowres.disk import DiskFullError, remove_quietly
from lowres.errors import LowresError
from lowres import run_lock
from lowres.track.runlog import read_status
from lowres.train import checkpoint, distributed
from lowres.train.data_fingerprint import check_same_data
from lowres.train.device import resolve
from lowres.train.nan_guard import NonFiniteLoss
from lowres.train.publish import epoch_line, publish_epoch, publish_safely
from lowres.train.runner import Run, RunResult, StepControl, StopFlag


def default_run_dir(cfg: Config, config_path: str | Path | None) -> Path:
    stem = cfg.name or (Path(config_path).stem if config_path else "run")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stem}-{stamp}"


def check_new_run_dir(run_dir: Path, lock_is_ours: bool = False) -> None:
    """Never write a new run over an existing one. A directory that a start killed before
    config.yaml was written (empty folders, a lock nobody holds) holds no run: reusable."""
    if run_dir.exists() and not started_nothing(run_dir, lock_is_ours):
        raise LowresError(f"run directory {run_dir} already exists and is not empty: resume it "
                          f"with `lowres train --resume {run_dir}` or choose another --run-dir")


def started_nothing(run_dir: Path, lock_is_ours: bool = False) -> bool:
    for entry in run_dir.iterdir():
        if entry.is_dir() and not any(entry.iterdir()):
            continue
        if entry.name.startswith(".") and ".tmp" in entry.name:  # a write a kill cut short
            continue
        if entry.name == run_lock.NAME and (lock_is_ours or not run_lock.held_by_other(run_dir)):
            continue
        return False
    return True


def remove_torn_writes(run_dir: Path) -> None:
    """Temp files a killed writer left (ours hold the lock now, so none is being written)."""
    for folder in (run_dir, run_dir / "checkpoints"):
        if folder.is_dir():
            for entry in folder.glob(".*.tmp*"):
                remove_quietly(entry)


def absolute_data_paths(cfg: Config) -> None:
    """The saved config must rerun and resume from any working directory."""
    for key in ("root", "val_dir", "cache_dir"):
        value = getattr(cfg.data, key)
        if value:
            setattr(cfg.data, key, str(Path(value).expanduser().resolve()))


def load_resume_config(run_dir: Path, overrides: list[str]) -> tuple[Config, dict | None, str | None]:
    """(config, checkpoint state, note): the state is None when the run was killed before
    its first checkpoint (it starts over, in place); the note says when last.pt was damaged
    and the run falls back to the checkpoint before it."""
    cfg_path = run_dir / "config.yaml"
    if not run_dir.is_dir():
        raise LowresError(f"run directory not found: {run_dir}")
    if not cfg_path.is_file():
        raise LowresError(f"{run_dir} is not a lowres run directory (no config.yaml); pass the "
                          f"directory `lowres train` created")
    state, note = checkpoint.load_for_resume(run_dir)
    cfg = config_mod.load(cfg_path, overrides)
    # Past the last stage but not marked finished: killed while finishing; resuming
    # completes the finish (run_end, status, report) without training.
    if state is not None and state["position"]["stage"] >= len(cfg.stages) \
            and read_status(run_dir).get("state") == "finished":
        raise LowresError(f"{run_dir} has already finished all {len(cfg.stages)} stages: nothing "
                          f"to resume (start a new run to train further)")
    return cfg, state, note


def train(config_path: str | Path | None, overrides: list[str] = (), run_dir: str | Path | None = None,
          resume: str | Path | None = None, time_limit: float | None = None,
          pause_after_epochs: int | None = None, pause_after_steps: int | None = None,
          dry_run: bool = False, out=None) -> RunResult | None:
    """Train from a config file (or resume a run directory). Returns None for a dry run."""
    out = out or sys.stdout
    dist = distributed.init()
    if not dist.is_main:  # one voice: rank 0 prints and shows progress
        out = open(os.devnull, "w")  # noqa: SIM115
        os.environ["LOWRES_PROGRESS"] = "0"
    lock = None
    try:
        state, note = None, None
        if resume is not None:
            run_dir = Path(resume)
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
        if resume is None and not dry_run and dist.is_main:
            # Only now, with config and data known good, does the new directory appear:
            # bad input leaves nothing behind.
            lock = run_lock.RunLock(run_dir).acquire()
            check_new_run_dir(run_dir, lock_is_ours=True)
        run = Run(cfg, run_dir, data, policy, dist) if not dry_run else None
        if dry_run:
            from lowres.train.dry_run import dry_run as do_dry_run  # noqa: PLC0415

            do_dry_run(cfg, data, policy, run_dir, out)
            return None
        if resume is not None:
            run.resumed_note = "; ".join(n for n in (note, lock and lock.note()) if n) or None
        return _train(run, state, overrides, time_limit, pause_after_epochs, pause_after_steps,
                      out, resumed=resume is not None)
    finally:
        if lock is not None:
            lock.release()
        distributed.shutdown(dist)


def _train(run: Run, state: dict | None, overrides, time_limit, pause_epochs, pause_steps, out,
           resumed: bool = False) -> RunResult:
    cfg, log, dist = run.cfg, run.log, run.dist
    if resumed and run.resumed_note:
        log.event("warning", message=run.resumed_note)
    if resumed and state is None:
        # Killed before its first checkpoint: nothing to continue, so it starts over in its
        # own directory (a metrics row of an epoch whose checkpoint never landed goes).
        log.truncate_metrics(0)
        log.event("resume", epoch=0, stage=0, step=0, overrides=list(overrides),
                  world_size=dist.world_size, note="no checkpoint yet: started over")
        if overrides and dist.is_main:
            config_mod.save(cfg, log.dir / "config.yaml")
    elif state is None:
        if dist.is_main:
            config_mod.save(cfg, log.dir / "config.yaml")
        log.write_env(str(run.policy.device))
        log.event("run_start", device=run.policy.describe(), train_images=len(run.data.train_labels),
                  val_images=len(run.data.val_labels), classes=run.data.num_classes,
                  world_size=dist.world_size)
    else:
        run.restore(state)
        log.truncate_metrics(run.position["epoch"])
        if overrides and dist.is_main:
            config_mod.save(cfg, log.dir / "config.yaml")
        log.event("resume", epoch=run.position["epoch"], stage=run.position["stage"],
                  step=run.position["step"], overrides=list(overrides), world_size=dist.world_size)
    log.set_status("running")
    print(f"lowres: training {log.dir} on {run.policy.describe()}", file=out)
    flag = StopFlag(time_limit, pause_epochs, pause_steps)
    flag.install()
    control = StepControl(flag, cfg.train.checkpoint_minutes, dist)
    session_epochs = 0
    try:
        while run.position["stage"] < len(cfg.stages):
            if not run.position["started"]:
                run.start_stage()
            stage_i = run.position["stage"]
            stage = cfg.stages[stage_i]
            pipeline = run.pipeline()
            while True:
                t0 = time.perf_counter()
                progress = run.engine.train_epoch(
                    run.loader, run.position["epoch"], pipeline, run.optimizer, run.schedule,
                    step_offset=run.position["stage_epoch"] * run.loader.steps_per_epoch,
                    aug_generator=run.aug_gen, resume=run.partial, control=control,
                    save=run.save_mid_epoch,
                    desc=f"{stage.name or f'stage{stage_i + 1}'} ep {run.position['stage_epoch'] + 1}")
                run.elapsed += time.perf_counter() - t0
                if progress.cut:
                    # The checkpoint holds the epoch's sums over all ranks (rank 0 resumes them).
                    run.partial = progress.summed(dist.all_reduce_sum)
                    run.position["step"] = progress.step
                    return _pause(run, flag, out)
                run.partial = None
                run.position["step"] = 0
                row, reason = publish_epoch(run, progress, time.perf_counter() - t0, pipeline)
                print(epoch_line(row, stage.epochs), file=out, flush=True)
                if reason is not None:
                    print(f"  {row['stage_name']} ends: {reason}", file=out, flush=True)
                session_epochs += 1
                if reason is not None:
                    log.event("stop", epoch=run.position["epoch"], stage=stage_i, reason=reason)
                    log.event("stage_end", epoch=run.position["epoch"], stage=stage_i)
                    run.position.update(stage=stage_i + 1, stage_epoch=0, started=False)
                run.save_last()
                control.saved()
                publish_safely(run)
                if dist.broadcast_flag(flag.epoch_done(session_epochs)) and \
                        run.position["stage"] < len(cfg.stages):
                    flag.reason = flag.reason or "stopped by another rank"
                    return _pause(run, flag, out)
                if reason is not None:
                    break
        run.writer.wait_checkpoints()  # "finished" only once last.pt is on disk
        log.event("run_end", epoch=run.position["epoch"], best_val_acc=run.best["val_acc"],
                  elapsed=run.elapsed)
        log.set_status("finished", epochs=run.position["epoch"], best_val_acc=run.best["val_acc"])
        publish_safely(run, final=True)
        best = run.best["val_acc"]
        print(f"lowres: finished {run.position['epoch']} epochs in {format_duration(run.elapsed)}"
              + (f", best val acc {best:.4f} (epoch {run.best['epoch']})" if best is not None else "")
              + f"\n  run directory: {log.dir}\n  report: {log.dir / 'report.html'}", file=out)
        return RunResult(log.dir, "finished", run.position["epoch"], best)
    except BaseException as exc:
        try:
            run.writer.close()  # what was submitted still lands; its own errors come second
        except Exception:  # noqa: BLE001
            pass
        if dist.is_main and log.dir.exists():
            try:  # on a full disk this write fails too: the first error is the one to see
                if isinstance(exc, (KeyboardInterrupt, DiskFullError, NonFiniteLoss)):
                    log.set_status("stopped", reason=str(exc),
                                   resume=f"lowres train --resume {log.dir}")
                else:
                    log.set_status("failed")
            except (OSError, LowresError):
                pass
        raise
    finally:
        flag.restore()
        run.writer.close()


def _pause(run: Run, flag: StopFlag, out) -> RunResult:
    run.save_last()
    run.writer.wait_checkpoints()  # the resume command below must find last.pt
    run.log.event("interrupted", epoch=run.position["epoch"], stage=run.position["stage"],
                  step=run.position["step"], reason=flag.reason)
    run.log.set_status("stopped", reason=flag.reason, resume=f"lowres train --resume {run.log.dir}")
    publish_safely(run, final=True)
    print(f"lowres: {flag.reason}; saved {run.log.checkpoint_dir / 'last.pt'} "
          f"(epoch {run.position['epoch']}, step {run.position['step']}).\n"
          f"  resume with: lowres train --resume {run.log.dir}", file=out)
    return RunResult(run.log.dir, "stopped", run.position["epoch"], run.best["val_acc"])
