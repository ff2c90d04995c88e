"""Seed groups as bands: one mean curve per group with its min-max over seeds shaded.

With several seeds per config, one line per run turns a comparison into a tangle in which
the eye follows the luckiest seed. A band shows what the seeds agree on: where two groups'
bands overlap, the curves do not tell the configs apart.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from lowres.track.plots import DPI, save_figure
from lowres.track.rundata import RunData

KINDS = {  # kind -> (title, y label, (column, is accuracy, line style) of each series)
    "loss": ("loss: mean over seeds, band min-max (solid val, dashed train)", "loss",
             (("val_loss", False, "-"), ("train_loss", False, "--"))),
    "accuracy": ("accuracy: mean over seeds, band min-max (solid val, dashed train)",
                 "accuracy (%)", (("val_acc", True, "-"), ("train_acc", True, "--"))),
    "lr": ("learning rate (mean over seeds)", "lr", (("lr", False, "-"),)),
}


def epoch_stats(runs: Sequence[RunData], column: str, is_acc: bool
                ) -> list[tuple[float, float, float, float, int]]:
    """(epoch, mean, min, max, runs measured) at each epoch any run of the group has."""
    by_epoch: dict[float, list[float]] = {}
    for run in runs:
        values = run.acc(column) if is_acc else run.cols.get(column, [])
        for e, v in zip(run.epochs, values):
            if not (math.isnan(e) or math.isnan(v)):
                by_epoch.setdefault(e, []).append(v)
    return [(e, sum(vs) / len(vs), min(vs), max(vs), len(vs))
            for e, vs in sorted(by_epoch.items())]


def band_plot(groups: Sequence[Sequence[RunData]], names: Sequence[str], colors: Sequence,
              kind: str, path: Path) -> Path | None:
    """One mean line per group and series; the main (first) series gets a min-max band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    title, ylabel, series = KINDS[kind]
    fig = Figure(figsize=(8.0, 4.2), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fig.subplots_adjust(left=0.09, right=0.70, top=0.9, bottom=0.13)
    drew, all_y = False, []
    for runs, name, color in zip(groups, names, colors):
        for k, (column, is_acc, style) in enumerate(series):
            stats = epoch_stats(runs, column, is_acc)
            if not stats:
                continue
            x = [s[0] for s in stats]
            mean = [s[1] for s in stats]
            label = f"{name} ({len(runs)} run{'s' if len(runs) != 1 else ''})" if k == 0 else None
            ax.plot(x, mean, linestyle=style, color=color, linewidth=1.4, label=label,
                    alpha=0.95 if k == 0 else 0.6)
            if k == 0 and len(runs) > 1:
                ax.fill_between(x, [s[2] for s in stats], [s[3] for s in stats], color=color,
                                alpha=0.2, linewidth=0)
            all_y += mean
            drew = True
    if not drew:
        return None
    if kind == "lr" and all_y and min(all_y) > 0:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_xlabel("epoch", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return save_figure(fig, path)
