"""Per-run curves as PNG files in run_dir/plots/, redrawn at the end of every epoch.

Three plots: loss.png (train and val loss), accuracy.png (train and val accuracy, EMA val
when present, best epoch starred), lr.png (learning rate per epoch, log scale). Every plot
marks stage boundaries (grey dashed vertical lines, labelled with the new stage's name) and
LR drops (`lr_drop` events: red dotted vertical lines half an epoch after the epoch that
decided the drop, i.e. just before the first epoch at the new rate).

Matplotlib is used through its object API with the Agg canvas (no pyplot, no global state,
no display needed), and files are replaced atomically, so a reader never sees half a PNG.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from lowres.track.rundata import RunData, finite, load_run

PLOT_FILES = ("loss.png", "accuracy.png", "lr.png")

STAGE_STYLE = dict(color="0.45", linestyle="--", linewidth=0.9, zorder=1)
DROP_STYLE = dict(color="tab:red", linestyle=":", linewidth=1.0, alpha=0.8, zorder=1)
FIGSIZE = (7.0, 3.6)
DPI = 100


def new_figure(figsize=FIGSIZE):
    """A Figure with an Agg canvas and one Axes (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.14)
    return fig, ax


def save_figure(fig, path: Path) -> Path:
    """Save as PNG through a temp file + rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fig.savefig(tmp, format="png", dpi=DPI)
    os.replace(tmp, path)
    return path


def _series(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys) if not math.isnan(x) and not math.isnan(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _plot(ax, xs, ys, label, n_points, **style):
    x, y = _series(xs, ys)
    if not x:
        return False
    marker = "o" if n_points <= 30 else None
    ax.plot(x, y, label=label, marker=marker, markersize=3, linewidth=1.4, **style)
    return True


def mark_stages_and_drops(ax, run: RunData, label_stages: bool = True) -> None:
    """Vertical lines at stage boundaries (named) and at LR drops."""
    for x, name in run.stage_boundaries():
        ax.axvline(x, **STAGE_STYLE)
        if label_stages:
            ax.text(x, 1.0, f" {name}", transform=ax.get_xaxis_transform(), fontsize=7,
                    color="0.3", va="bottom", ha="left", clip_on=False)
    for epoch, _lr in run.lr_drops():
        ax.axvline(epoch + 0.5, **DROP_STYLE)


def _finish(ax, title: str, ylabel: str, legend_loc: str) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("epoch", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc=legend_loc, fontsize=8, framealpha=0.8)


def _set_xlim(ax, run: RunData) -> None:
    xs = finite(run.epochs)
    if xs:
        lo, hi = min(xs), max(xs)
        pad = max(0.5, 0.01 * (hi - lo))
        ax.set_xlim(lo - pad, hi + pad)


def draw_loss(ax, run: RunData) -> bool:
    n = len(run.rows)
    drew = False
    drew |= _plot(ax, run.epochs, run.cols.get("train_loss", []), "train", n, color="tab:blue")
    drew |= _plot(ax, run.epochs, run.cols.get("val_loss", []), "val", n, color="tab:orange")
    drew |= _plot(ax, run.epochs, run.cols.get("ema_val_loss", []), "EMA val", n,
                  color="tab:green", linestyle="--")
    if not drew:
        return False
    mark_stages_and_drops(ax, run)
    _set_xlim(ax, run)
    _finish(ax, "loss", "loss", "upper right")
    return True


def draw_accuracy(ax, run: RunData) -> bool:
    n = len(run.rows)
    drew = False
    drew |= _plot(ax, run.epochs, run.acc("train_acc"), "train", n, color="tab:blue")
    drew |= _plot(ax, run.epochs, run.acc("val_acc"), "val", n, color="tab:orange")
    drew |= _plot(ax, run.epochs, run.acc("ema_val_acc"), "EMA val", n,
                  color="tab:green", linestyle="--")
    if not drew:
        return False
    band = [(e, lo, hi) for e, lo, hi in zip(run.epochs, run.acc("val_acc_low"),
                                             run.acc("val_acc_high"))
            if not (math.isnan(e) or math.isnan(lo) or math.isnan(hi))]
    if band:  # how far each val point could move from the split's size alone
        ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                        color="tab:orange", alpha=0.15, linewidth=0, label="val 95% interval")
    best, best_epoch, rule = run.checkpoint_best()
    if best is not None and best_epoch is not None:
        how = f", {rule}" if rule else ""
        ax.plot([best_epoch], [best], marker="*", markersize=11, color="tab:red", linestyle="none",
                label=f"best.pt val {best:.2f}% (epoch {best_epoch}{how})", zorder=5)
    mark_stages_and_drops(ax, run)
    _set_xlim(ax, run)
    _finish(ax, "accuracy", "accuracy (%)", "lower right")
    return True


def draw_lr(ax, run: RunData) -> bool:
    n = len(run.rows)
    if not _plot(ax, run.epochs, run.cols.get("lr", []), "lr", n, color="tab:purple"):
        return False
    lrs = finite(run.cols.get("lr", []))
    if lrs and min(lrs) > 0:
        ax.set_yscale("log")
    drops = [(e, lr) for e, lr in run.lr_drops() if not math.isnan(lr) and (lr > 0 or not lrs)]
    if drops:
        ax.plot([d[0] + 0.5 for d in drops], [d[1] for d in drops], marker="v", color="tab:red",
                linestyle="none", markersize=6, label="LR drop", zorder=5)
    mark_stages_and_drops(ax, run)
    _set_xlim(ax, run)
    _finish(ax, "learning rate", "lr", "upper right")
    return True


def _plot_file(draw, run: RunData, path: Path) -> Path | None:
    fig, ax = new_figure()
    return save_figure(fig, path) if draw(ax, run) else None


def plot_loss(run: RunData, path: Path) -> Path | None:
    return _plot_file(draw_loss, run, path)


def plot_accuracy(run: RunData, path: Path) -> Path | None:
    return _plot_file(draw_accuracy, run, path)


def plot_lr(run: RunData, path: Path) -> Path | None:
    return _plot_file(draw_lr, run, path)


def curves_figure(run: RunData):
    """Loss, accuracy and learning rate side by side in one Figure (for notebooks)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 3.8), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for ax, draw in zip(axes, (draw_loss, draw_accuracy, draw_lr)):
        if not draw(ax, run):
            ax.set_axis_off()
    fig.subplots_adjust(left=0.05, right=0.98, top=0.88, bottom=0.14, wspace=0.25)
    return fig


def write_run_plots(run_dir: str | Path, strict: bool = False) -> list[Path]:
    """Draw loss.png, accuracy.png and lr.png into run_dir/plots/ and return their paths.

    Call it at the end of every epoch (about 0.3 s for 400 epochs). A plot with no data
    (empty metrics.csv, a column never filled) is skipped, so the list may be shorter than
    three or empty. With `strict=False` (the default, for the training loop) any error is
    reported as one line on stderr and never raised: plotting must not stop a run.
    """
    run_dir = Path(run_dir)
    written: list[Path] = []
    try:
        run = load_run(run_dir)
        if not run.rows:
            return written
        out = run_dir / "plots"
        out.mkdir(parents=True, exist_ok=True)
        for fn, name in ((plot_loss, "loss.png"), (plot_accuracy, "accuracy.png"),
                         (plot_lr, "lr.png")):
            path = fn(run, out / name)
            if path is not None:
                written.append(path)
    except Exception as exc:  # noqa: BLE001 - plotting must never kill training
        if strict:
            raise
        print(f"lowres: warning: plots of {run_dir} not updated: {type(exc).__name__}: {exc}",
              file=sys.stderr)
    return written
