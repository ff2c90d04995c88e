"""Optional TensorBoard scalars (config `track.tensorboard: true`), in run_dir/tensorboard/.

The `tensorboard` package is not a dependency. Without it the logger prints one hint line,
once per process, and does nothing. The run directory's own files stay the record of a
run; TensorBoard is a view for those who already use it.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

HINT = "tensorboard logging is off: pip install tensorboard"

# metrics.csv column -> TensorBoard tag (columns not listed are not logged)
TAGS = {
    "train_loss": "loss/train", "val_loss": "loss/val", "ema_val_loss": "loss/ema_val",
    "train_acc": "accuracy/train", "val_acc": "accuracy/val", "ema_val_acc": "accuracy/ema_val",
    "lr": "lr", "images_per_s": "speed/images_per_s", "seconds": "time/epoch_seconds",
    "stage": "stage",
}

_hinted = False


def _summary_writer_class():
    """torch.utils.tensorboard.SummaryWriter, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415
    except ImportError:
        return None
    return SummaryWriter


class TensorBoardLogger:
    """Logs each epoch's metrics row as scalars at step = global epoch.

    `enabled=False` (or a process that is not rank 0) makes every call a no-op.
    """

    def __init__(self, run_dir: str | Path, enabled: bool):
        global _hinted
        self.writer = None
        if not enabled:
            return
        cls = _summary_writer_class()
        if cls is None:
            if not _hinted:
                print(HINT, file=sys.stderr, flush=True)
                _hinted = True
            return
        self.writer = cls(log_dir=str(Path(run_dir) / "tensorboard"))

    @property
    def active(self) -> bool:
        return self.writer is not None

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Log one metrics row (the dict given to RunLog.append_metrics); empty cells skipped."""
        if self.writer is None:
            return
        try:
            step = int(row["epoch"])
        except (KeyError, TypeError, ValueError):
            return
        for column, tag in TAGS.items():
            value = row.get(column)
            if value is None or value == "":
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
