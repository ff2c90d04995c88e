"""Per-run curves as PNG files in run_dir/plots/, redrawn at the end of every epoch.

One plot per panel of the metrics table (run/metrics.py): loss.png, accuracy.png (plus the
val 95% interval band and best.pt starred), lr.png (log scale, LR drops marked). Each panel
draws every metric whose `panel` names it, with the metric's label and style. Every plot
marks stage boundaries (grey dashed vertical lines, labelled with the new stage's name) and
LR drops (`lr_drop` events: red dotted vertical lines half an epoch after the epoch that
decided the drop, i.e. just before the first epoch at the new rate).

Matplotlib is used through its object API with the Agg canvas (no pyplot, no global state,
no display needed), and files are replaced atomically, so a reader never sees half a PNG.
"""
from __future__ import annotations

import io
import math
import sys
from pathlib import Path

from lowres.basics.disk import replace_bytes
from lowres.run.metrics import Metric, on_panel
from lowres.run.read import RunData, finite, load_run

PANELS = {  # panel -> (file, title, y label, legend corner)
    "loss": ("loss.png", "loss", "loss", "upper right"),
    "accuracy": ("accuracy.png", "accuracy", "accuracy (%)", "lower right"),
    "lr": ("lr.png", "learning rate", "lr", "upper right"),
}
PLOT_FILES = tuple(spec[0] for spec in PANELS.values())

STAGE_STYLE = dict(color="0.45", linestyle="--", linewidth=0.9, zorder=1)
DROP_STYLE = dict(color="tab:red", linestyle=":", linewidth=1.0, alpha=0.8, zorder=1)
FIGSIZE = (7.0, 3.6)
DPI = 100


def figure(figsize=FIGSIZE):
    """A Figure with an Agg canvas of its own: no pyplot, so no global state, no GUI backend
    and no figure left open (every figure of lowres is made here and saved by save_figure)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def shown_inline(fig):
    """In Jupyter: the figure shown once as a PNG, and None (a returned Figure would be drawn a
    second time). Elsewhere: the figure itself, for the caller to save or show."""
    from lowres.basics.progress import in_notebook

    if not in_notebook():
        return fig
    import io

    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    display(Image(data=buf.getvalue()))
    return None


def new_figure(figsize=FIGSIZE, right: float = 0.97, panels: int = 1):
    """A figure and its Axes: one, or an array of `panels` side by side."""
    fig = figure(figsize)
    axes = fig.subplots(1, panels)
    # 0.7 inch on the left for the y label, whatever the figure's width
    fig.subplots_adjust(left=0.7 / figsize[0], right=right, top=0.9, bottom=0.14, wspace=0.25)
    return fig, axes


def save_figure(fig, path: Path) -> Path:
    """Save as PNG, replacing the file atomically (disk.replace_bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    replace_bytes(path, buf.getvalue())
    return Path(path)


def shown(metric: Metric, values: list[float]) -> list[float]:
    """Values as a plot shows them: accuracies (fractions in the data) in percent."""
    return [100 * v for v in values] if metric.fmt == "percent" else list(values)


def series(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """The points where both x and y are numbers."""
    pairs = [(x, y) for x, y in zip(xs, ys) if not math.isnan(x) and not math.isnan(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def mark_stages_and_drops(ax, run: RunData) -> None:
    """Vertical lines at stage boundaries (named) and at LR drops."""
    for x, name in run.stage_boundaries():
        ax.axvline(x, **STAGE_STYLE)
        ax.text(x, 1.0, f" {name}", transform=ax.get_xaxis_transform(), fontsize=7,
                color="0.3", va="bottom", ha="left", clip_on=False)
    for epoch, _lr in run.lr_drops():
        ax.axvline(epoch + 0.5, **DROP_STYLE)


def finish(ax, title: str, ylabel: str, legend: dict) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("epoch", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**legend)


def _accuracy_marks(ax, run: RunData) -> None:
    # How far each val point could move from the split's size alone.
    lows, highs = run.cols.get("val_acc_low", []), run.cols.get("val_acc_high", [])
    band = [(e, lo, hi) for e, lo, hi in zip(run.epochs, lows, highs)
            if not (math.isnan(e) or math.isnan(lo) or math.isnan(hi))]
    if band:
        ax.fill_between([b[0] for b in band], [100 * b[1] for b in band],
                        [100 * b[2] for b in band], color="tab:orange", alpha=0.15,
                        linewidth=0, label="val 95% interval")
    best, best_epoch, rule = run.checkpoint_best()
    if best is not None and best_epoch is not None:
        how = f", {rule}" if rule else ""
        ax.plot([best_epoch], [100 * best], marker="*", markersize=11, color="tab:red",
                linestyle="none", zorder=5,
                label=f"best.pt val {100 * best:.2f}% (epoch {best_epoch}{how})")


def _lr_marks(ax, run: RunData) -> None:
    lrs = finite(run.cols.get("lr", []))
    if lrs and min(lrs) > 0:
        ax.set_yscale("log")
    drops = [(e, lr) for e, lr in run.lr_drops() if not math.isnan(lr) and (lr > 0 or not lrs)]
    if drops:
        ax.plot([d[0] + 0.5 for d in drops], [d[1] for d in drops], marker="v", color="tab:red",
                linestyle="none", markersize=6, label="LR drop", zorder=5)


PANEL_MARKS = {"accuracy": _accuracy_marks, "lr": _lr_marks}


def draw_panel(ax, run: RunData, panel: str) -> bool:
    """Draw every metric of `panel` that has values; False (nothing drawn) when none has."""
    drew = False
    for metric in on_panel(panel):
        x, y = series(run.epochs, shown(metric, run.cols.get(metric.name, [])))
        if x:
            ax.plot(x, y, label=metric.label, marker="o" if len(run.rows) <= 30 else None,
                    markersize=3, linewidth=1.4, **metric.style)
            drew = True
    if not drew:
        return False
    if panel in PANEL_MARKS:
        PANEL_MARKS[panel](ax, run)
    mark_stages_and_drops(ax, run)
    xs = finite(run.epochs)
    if xs:
        pad = max(0.5, 0.01 * (max(xs) - min(xs)))
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
    _file, title, ylabel, corner = PANELS[panel]
    finish(ax, title, ylabel, dict(loc=corner, fontsize=8, framealpha=0.8))
    return True


def curves_figure(run: RunData):
    """Every panel side by side in one Figure (for notebooks)."""
    fig, axes = new_figure((15, 3.8), right=0.98, panels=len(PANELS))
    for ax, panel in zip(axes, PANELS):
        if not draw_panel(ax, run, panel):
            ax.set_axis_off()
    return fig


def write_run_plots(run_dir: str | Path, strict: bool = False) -> list[Path]:
    """Draw one PNG per panel into run_dir/plots/ and return their paths.

    Call it at the end of every epoch (about 0.3 s for 400 epochs). A panel with no data
    (empty metrics.csv, columns never filled) is skipped, so the list may be shorter than
    PLOT_FILES or empty. With `strict=False` (the default, for the training loop) any error
    is reported as one line on stderr and never raised: plotting must not stop a run.
    """
    run_dir = Path(run_dir)
    written: list[Path] = []
    try:
        run = load_run(run_dir)
        if not run.rows:
            return written
        out = run_dir / "plots"
        out.mkdir(parents=True, exist_ok=True)
        for panel, (name, *_rest) in PANELS.items():
            fig, ax = new_figure()
            if draw_panel(ax, run, panel):
                written.append(save_figure(fig, out / name))
    except Exception as exc:  # plotting must never kill training (re-raised when strict)
        if strict:
            raise
        print(f"lowres: warning: plots of {run_dir} not updated: {type(exc).__name__}: {exc}",
              file=sys.stderr)
    return written
