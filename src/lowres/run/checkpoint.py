"""Checkpoints: one dict of plain tensors and numbers, written atomically, loaded safely.

A kill at any moment leaves the previous file intact (temp file + fsync + rename; the
training loop hands the writing to train/background.py), and
loading uses `torch.load(weights_only=True)`, so a checkpoint can never run code.

Contents (every key listed here, nanoGPT-style):
  format, kind ("last" | "best"), config (resolved, plain dict),
  data {class_names, mean, std, image_shape, layout, root, fingerprint (train/data_fingerprint.py)},
  model (state dict of the bare module), ema (or None),
  optimizer, schedule, stop, scaler (or None),
  position {stage, stage_epoch, step, epoch, started} (train/run_state.py): where training continues,
  partial {loss_sum, correct, seen, seconds}: accumulators of a cut epoch,
  rng {torch, cuda (this process's GPU, or None), augment, augment_device} (train/rng.py),
  elapsed (seconds of training so far), budget (train/time_budget.py's state, or None),
  best {val_acc, epoch, and train/selection.py's state},
  nan_skips (steps undone by train.on_nan=skip_step so far)
A mid-epoch checkpoint (train.checkpoint_minutes) is a "last" one whose position.step > 0.

A checkpoint is known good before it takes a name: the temp file is read back and every
record's CRC-32 (torch.save writes one per record of its zip archive) is checked before the
rename. `last.pt` keeps its predecessor as `last.prev.pt` (a hard link made just before
the rename), so a last.pt damaged later (a torn copy, a bad disk, a wrong file put in its
place) costs one checkpoint interval, not the run: `load_for_resume` falls back to it and
says so. Loading checks the same CRCs, so damage is an error, never wrong weights.
"""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from lowres.basics.disk import disk_full, fsync_dir, is_disk_full, remove_quietly
from lowres.errors import LowresError

FORMAT = 1


def save(state: dict[str, Any], path: str | Path, keep_previous: bool = False,
         then: str = "") -> None:
    """Write `state` to `path` atomically, verified before it replaces the old file.
    `keep_previous`: the file it replaces stays as <name>.prev.pt. `then`: what to do after
    freeing space, for the one line of a full disk."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        problem = damage(tmp)
        if problem:
            raise LowresError(f"the checkpoint just written to {path} reads back damaged "
                              f"({problem}): the disk may be failing; the previous {path.name} "
                              f"is kept")
        if keep_previous and path.is_file():
            prev_tmp = path.with_name(f".{previous_path(path).name}.tmp{os.getpid()}")
            remove_quietly(prev_tmp)
            try:
                os.link(path, prev_tmp)  # no copy: the old inode gets a second name
            except OSError as exc:
                if is_disk_full(exc):
                    raise
                shutil.copyfile(path, prev_tmp)  # a file system without hard links
            os.replace(prev_tmp, previous_path(path))
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        remove_quietly(tmp)
        if is_disk_full(exc):
            raise disk_full(path, then) from None
        raise


def previous_path(path: str | Path) -> Path:
    """last.pt -> last.prev.pt: the checkpoint before the current one."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def damage(path: str | Path) -> str | None:
    """Why `path` is not a whole checkpoint file (None when every CRC matches): a truncated,
    zero-filled or overwritten file fails here without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every record, checks its CRC-32
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"not a whole checkpoint archive: {type(exc).__name__}"
    except Exception as exc:  # noqa: BLE001 (zlib and struct errors of a mangled header)
        return f"damaged archive: {type(exc).__name__}"
    if bad is not None:
        return f"checksum mismatch in {bad}"
    return None


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LowresError(f"checkpoint not found: {path} (train the run first, or pass a run "
                          f"directory that has checkpoints/)")
    problem = damage(path)
    if problem:
        raise LowresError(f"checkpoint {path} is damaged ({problem}); use another checkpoint "
                          f"(--checkpoint last/best) or retrain")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 (any unpickling failure means the same to a user)
        raise LowresError(f"checkpoint {path} cannot be read ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); it is damaged or "
                          f"not a lowres checkpoint") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise LowresError(f"checkpoint {path} is not a lowres checkpoint of format {FORMAT}")
    return state


def find(run_dir: str | Path, which: str = "best") -> Path:
    """checkpoints/best.pt (falling back to last.pt) or checkpoints/last.pt of a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LowresError(f"run directory not found: {run_dir}")
    ckpt_dir = run_dir / "checkpoints"
    order = ["best.pt", "last.pt"] if which == "best" else ["last.pt"]
    for name in order:
        if (ckpt_dir / name).is_file():
            return ckpt_dir / name
    raise LowresError(f"{run_dir} has no checkpoint ({' or '.join(order)} in checkpoints/): "
                      f"is it a lowres run directory that finished at least one epoch?")


def load_for_resume(run_dir: str | Path) -> tuple[dict | None, str | None]:
    """(state, note) to resume `run_dir` from: last.pt, or last.prev.pt when last.pt is
    damaged (the note, one line, says so; the damaged file is kept aside as
    last.damaged.pt, so the next save cannot rotate it over the good one). (None, None)
    when the run never wrote a checkpoint (it was killed while starting)."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    last = ckpt_dir / "last.pt"
    prev = previous_path(last)
    if not last.is_file() and not prev.is_file():
        return None, None
    try:
        state = load(last)
        if state.get("kind") != "last":  # a best.pt or another file copied over it
            raise LowresError(f"{last} is a {state.get('kind')!r} checkpoint, not a resumable "
                              f"'last' one")
        return state, None
    except LowresError as exc:
        if not last.is_file():  # killed between the two renames of a save: prev is whole
            reason = "missing"
        else:
            reason = str(exc)
    if not prev.is_file():
        raise LowresError(f"{reason}; there is no earlier checkpoint ({prev.name}) to fall back "
                          f"to: start the run again") from None
    state = load(prev)
    if last.is_file():
        os.replace(last, ckpt_dir / "last.damaged.pt")
    pos = state["position"]
    where = f"resuming from {prev.name} (epoch {pos['epoch']}, step {pos['step']})"
    if reason == "missing":
        return state, f"{last} is missing: {where}"
    return state, f"{reason}: {where}; the damaged file is kept as last.damaged.pt"
