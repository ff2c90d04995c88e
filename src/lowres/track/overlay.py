"""Curves of several runs in one picture, for `lowres compare`.

Each curve belongs to a group of runs: one run (one colour per run), or the seeds of one
config (`--group-seeds`). A group is drawn as its mean line at each epoch, its main series
with the min-max band over its runs shaded: with several seeds, one line per run turns a
comparison into a tangle in which the eye follows the luckiest seed, while a band shows what
the seeds agree on. A one-run group also gets its stage boundaries and LR drops marked.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from lowres.run.metrics import by_name
from lowres.track.plots import PANELS, finish, new_figure, save_figure, shown
from lowres.run.read import RunData

# The columns each plot overlays: the main series (solid, banded over seeds) first, then
# train (dashed). Titles and y labels are those of the run plots' panels.
SERIES = {"loss": ("val_loss", "train_loss"), "accuracy": ("val_acc", "train_acc"), "lr": ("lr",)}


def epoch_stats(runs: Sequence[RunData], column: str) -> list[tuple[float, float, float, float, int]]:
    """(epoch, mean, min, max, runs measured) at each epoch any run of the group has."""
    by_epoch: dict[float, list[float]] = {}
    for run in runs:
        for e, v in zip(run.epochs, run.cols.get(column, [])):
            if not (math.isnan(e) or math.isnan(v)):
                by_epoch.setdefault(e, []).append(v)
    return [(e, sum(vs) / len(vs), min(vs), max(vs), len(vs))
            for e, vs in sorted(by_epoch.items())]


def _mark_run(ax, run: RunData, x: list[float], y: list[float], color) -> None:
    """Stage boundaries (dashed) and LR drops (triangles on the main curve) of one run."""
    for xb, _name in run.stage_boundaries():
        ax.axvline(xb, color=color, linestyle=(0, (4, 3)), linewidth=0.8, alpha=0.6)
    at = dict(zip(x, y))
    for epoch, _lr in run.lr_drops():
        if epoch in at:
            ax.plot([epoch], [at[epoch]], marker="v", color=color, markersize=7,
                    linestyle="none", markeredgecolor="black", markeredgewidth=0.5)


def overlay_plot(groups: Sequence[tuple[str, Sequence[RunData]]], kind: str, path: Path,
                 seed_groups: bool = False) -> Path | None:
    """One colour per (label, runs) group, a curve per series; None when nothing to draw."""
    _file, title, ylabel, _corner = PANELS[kind]
    series = SERIES[kind]
    title += ": mean over seeds, band min-max" if seed_groups else ""
    title += " (solid val, dashed train)" if len(series) > 1 else ""
    fig, ax = new_figure((8.0, 4.2), right=0.72)
    all_y: list[float] = []
    for (label, runs), color in zip(groups, _colors(len(groups))):
        for k, column in enumerate(series):
            stats = epoch_stats(runs, column)
            if not stats:
                continue
            metric = by_name()[column]
            x, mean = [s[0] for s in stats], shown(metric, [s[1] for s in stats])
            ax.plot(x, mean, linestyle="-" if k == 0 else "--", color=color, label=label if k == 0 else None,
                    linewidth=1.3, marker="o" if len(x) <= 30 and len(runs) == 1 else None,
                    markersize=2.5, alpha=0.9 if k == 0 else 0.6)
            if k == 0 and len(runs) > 1:
                ax.fill_between(x, shown(metric, [s[2] for s in stats]),
                                shown(metric, [s[3] for s in stats]), color=color, alpha=0.2,
                                linewidth=0)
            if k == 0 and len(runs) == 1:
                _mark_run(ax, runs[0], x, mean, color)
            all_y += mean
    if not all_y:
        return None
    if kind == "lr" and min(all_y) > 0:
        ax.set_yscale("log")
    finish(ax, title, ylabel, dict(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                                   frameon=False))
    return save_figure(fig, path)


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
