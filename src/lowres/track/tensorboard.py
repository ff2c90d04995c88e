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

from lowres.run import metrics

HINT = "tensorboard logging is off: pip install tensorboard"

_hinted = False


def _summary_writer_class():
    """torch.utils.tensorboard.SummaryWriter, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


class TensorBoardLogger:
    """Logs each epoch's metrics row as scalars at step = global epoch.

    `enabled=False` (or a process that is not rank 0) makes every call a no-op.
    """

    def __init__(self, run_dir: str | Path, enabled: bool):
        global _hinted
        self.writer = None  # stays None when logging is off (disabled, or no tensorboard)
        if not enabled:
            return
        cls = _summary_writer_class()
        if cls is None:
            if not _hinted:
                print(HINT, file=sys.stderr, flush=True)
                _hinted = True
            return
        self.writer = cls(log_dir=str(Path(run_dir) / "tensorboard"))

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Log one metrics row (the dict given to RunLog.append_metrics) under each metric's
        TensorBoard tag; empty cells skipped."""
        if self.writer is None:
            return
        try:
            step = int(row["epoch"])
        except (KeyError, TypeError, ValueError):
            return
        for metric in metrics.METRICS:  # the table's `tag` names what is logged
            value = metrics.to_float(row.get(metric.name))
            if metric.tag and math.isfinite(value):
                self.writer.add_scalar(metric.tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
