"""The per-epoch columns of metrics.csv, each defined once.

A row here says everything the run directory's readers need about a column: how report.html
formats it, which plot panel draws it (and with what label and line style), and its
TensorBoard tag. run/log.py (the csv header and the check of a producer's row), report, plots and
tensorboard all read this table, so showing a new per-epoch metric is: compute it in train/
(the producer puts it in the epoch row) and add one `Metric` here.

Accuracies are fractions (0..1) in every file and value; they become percent only when
formatted for display (`show`, and the accuracy plot's y axis).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lowres.basics.durations import format_duration
from lowres.basics.intervals import fmt_interval_pct

# How a cell is shown: a function of the float value. "text" cells are shown as written.
FORMATS = {
    "int": lambda v: f"{v:.0f}",
    "percent": lambda v: f"{100 * v:.2f}",
    "loss": lambda v: f"{v:.4g}",
    "lr": lambda v: f"{v:.4g}",
    "count": lambda v: f"{v:.0f}",
    "seconds": lambda v: f"{v:.1f}",
    "duration": lambda v: format_duration(v, clock=True),
}


@dataclass(frozen=True)
class Metric:
    name: str  # the metrics.csv column and the key of the producer's epoch row
    fmt: str = "text"  # a key of FORMATS, or "text"
    panel: str | None = None  # plot panel that draws it: "loss", "accuracy", "lr" or None
    label: str = ""  # its legend label in that panel
    style: dict[str, Any] = field(default_factory=dict)  # matplotlib line style there
    tag: str | None = None  # TensorBoard scalar tag; None: not logged
    in_table: bool = True  # a column of report.html's table (False: shown inside another)


TRAIN = {"color": "tab:blue"}
VAL = {"color": "tab:orange"}
EMA = {"color": "tab:green", "linestyle": "--"}

METRICS: list[Metric] = [
    Metric("epoch", "int"),  # global epoch, 1-based, counted over all stages
    Metric("stage", "int", tag="stage"),  # stage index, 0-based
    Metric("stage_name"),
    Metric("stage_epoch", "int"),  # epoch within the stage, 1-based
    # learning rate at the end of the epoch's training
    Metric("lr", "lr", "lr", "lr", {"color": "tab:purple"}, tag="lr"),
    Metric("train_loss", "loss", "loss", "train", TRAIN, tag="loss/train"),
    Metric("train_acc", "percent", "accuracy", "train", TRAIN, tag="accuracy/train"),
    Metric("val_loss", "loss", "loss", "val", VAL, tag="loss/val"),
    Metric("val_acc", "percent", "accuracy", "val", VAL, tag="accuracy/val"),
    # EMA columns are empty when EMA is off
    Metric("ema_val_loss", "loss", "loss", "EMA val", EMA, tag="loss/ema_val"),
    Metric("ema_val_acc", "percent", "accuracy", "EMA val", EMA, tag="accuracy/ema_val"),
    # training images per second (augmentation included)
    Metric("images_per_s", "count", tag="speed/images_per_s"),
    Metric("seconds", "seconds", tag="time/epoch_seconds"),  # wall time of the epoch
    Metric("elapsed", "duration"),  # cumulative training wall time, resumes included
    # The val split's size and the Wilson 95% interval of val_acc (lowres.basics.intervals): the
    # interval is shown inside the val acc cell, so its bounds need no columns of their own.
    Metric("val_images", "count", in_table=False),
    Metric("val_acc_low", "percent", in_table=False),
    Metric("val_acc_high", "percent", in_table=False),
]


def columns() -> list[str]:
    """metrics.csv's header, in order."""
    return [m.name for m in METRICS]


def by_name() -> dict[str, Metric]:
    return {m.name: m for m in METRICS}


def on_panel(panel: str) -> list[Metric]:
    return [m for m in METRICS if m.panel == panel]


def check_row(row: dict[str, Any]) -> None:
    """A producer's epoch row may leave columns out (empty cells), never add one: a key the
    table does not know is a programming error, not a value to drop."""
    unknown = [k for k in row if k not in by_name()]
    if unknown:
        raise ValueError(f"metrics row has keys not in lowres.run.metrics.METRICS: {unknown}"
                         " (add a Metric row for each)")


def to_float(value: Any) -> float:
    """A metrics.csv cell as a float; empty or malformed cells are NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def show(metric: Metric, raw: Any, row: dict[str, Any] | None = None) -> str:
    """A cell for display: formatted by the metric's kind; a percent with `<name>_low` and
    `<name>_high` in the row gets its interval. Malformed cells are shown as written."""
    if raw in ("", None):
        return ""
    value = to_float(raw)
    if metric.fmt not in FORMATS or math.isnan(value):
        return str(raw)
    text = FORMATS[metric.fmt](value)
    if metric.fmt == "percent" and row is not None:
        low, high = to_float(row.get(f"{metric.name}_low")), to_float(row.get(f"{metric.name}_high"))
        if not (math.isnan(low) or math.isnan(high)):
            text += " " + fmt_interval_pct(100 * low, 100 * high)
    return text


def header(metric: Metric) -> str:
    return metric.name.replace("_", " ") + (" %" if metric.fmt == "percent" else "")


def fmt_pct(fraction: float | None, bounds: tuple[float, float] | None = None) -> str:
    """A fraction as '48.00%', with its interval's bounds (fractions) as '48.00% (38.4-57.7)';
    '-' when missing."""
    if fraction is None or math.isnan(fraction):
        return "-"
    text = f"{100 * fraction:.2f}%"
    return f"{text} {fmt_interval_pct(100 * bounds[0], 100 * bounds[1])}" if bounds else text
