"""Checkpoints: one dict of plain tensors and numbers, written atomically, loaded safely.

A kill at any moment leaves the previous file intact (temp file + fsync + rename; the
training loop hands the writing to train/background.py), and
loading uses `torch.load(weights_only=True)`, so a checkpoint can never run code.

Contents (every key listed here, nanoGPT-style):
  format, kind ("last" | "best"), config (resolved, plain dict),
  data {class_names, mean, std, image_shape, layout, root},
  model (state dict of the bare module), ema (or None),
  optimizer, schedule, stop, scaler (or None),
  position {stage, stage_epoch, step, epoch}: where training continues,
  partial {loss_sum, correct, seen, seconds}: accumulators of a cut epoch,
  rng {torch, cuda (this process's GPU, or None), augment, augment_device} (train/rng.py),
  elapsed (seconds of training so far), best {val_acc, epoch}
A mid-epoch checkpoint (train.checkpoint_minutes) is a "last" one whose position.step > 0.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lowres.errors import LowresError

FORMAT = 1


def save(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LowresError(f"checkpoint not found: {path} (train the run first, or pass a run "
                          f"directory that has checkpoints/)")
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
