"""The run directory at start-up: where a new run goes, what a resume finds there.

A new run never writes over an existing one; a directory that a start killed before its
config.yaml landed holds no run and is reused. A resume reads the saved config (with its
overrides) and the newest whole checkpoint, falling back to the one before when the last
is damaged.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from lowres import config as config_mod
from lowres.config import Config
from lowres.basics.disk import remove_quietly
from lowres.errors import LowresError
from lowres.run import lock as run_lock
from lowres.run.log import read_status
from lowres.run import checkpoint


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
                          f"to resume (predict with `lowres predict {run_dir} --data DATA`, or "
                          f"start a new run to train further)")
    return cfg, state, note
