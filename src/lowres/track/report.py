"""report.html: one self-contained page per run (and per comparison), from jinja2 templates.

The page (templates/) has no scripts, no external styles or fonts, and embeds its plots as
base64 PNG data URIs, so a single file can be mailed, archived or opened from any browser
offline. It is rewritten atomically at the end of every epoch, so a run killed at any
moment still has a current report. This module gathers the values; the templates lay them
out and escape them.
"""
from __future__ import annotations

import base64
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import jinja2

from lowres.basics.disk import replace_text
from lowres.basics.durations import format_duration
from lowres.basics.intervals import split_precision_line
from lowres.run import metrics
from lowres.track.plots import PLOT_FILES, write_run_plots
from lowres.run.read import RunData, load_run
from lowres.run.log import now_iso

TABLE_LAST_N = 40  # metrics rows shown in full; older epochs are summarised by the best row

STATE_CLASSES = {"running": "running", "finished": "finished",
                 "stopped (resumable)": "resumable", "pruned": "resumable", "failed": "failed"}

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True)
# A Markdown table cell: a "|" would end the cell, a newline the row.
_templates.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")


def render(template: str, **values: Any) -> str:
    """A page from templates/ (values autoescaped in .html templates)."""
    return _templates.get_template(template).render(**values)


def embedded_images(paths: Sequence[Path]) -> list[tuple[str, str]]:
    """(data: URI, alt text) of each readable PNG."""
    out = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        out.append(("data:image/png;base64," + base64.b64encode(data).decode("ascii"),
                    Path(path).stem))
    return out


# --------------------------------------------------------------------------- run report


def _metrics_table(run: RunData) -> dict[str, Any]:
    shown = [m for m in metrics.METRICS if m.in_table and run.rows and m.name in run.rows[0]
             # columns empty in every row (EMA when off) are left out
             and any(r.get(m.name) not in ("", None) for r in run.rows)]
    _, best_epoch, _ = run.checkpoint_best()
    index = list(range(max(0, len(run.rows) - TABLE_LAST_N), len(run.rows)))
    note = ""
    if len(run.rows) > TABLE_LAST_N:
        best_i = next((i for i, e in enumerate(run.epochs) if e == best_epoch), None)
        if best_i is not None and best_i not in index:
            index.insert(0, best_i)
        note = (f"the best epoch and the last {TABLE_LAST_N} of {len(run.rows)} epochs; all "
                "epochs are in metrics.csv")
    rows = [[metrics.show(m, run.rows[i].get(m.name), run.rows[i]) for m in shown]
            for i in index]
    classes = ["best" if best_epoch is not None and run.epochs[i] == best_epoch else ""
               for i in index]
    left = 3 if any(m.name == "stage_name" for m in shown) else 1
    return {"header": [metrics.header(m) for m in shown], "rows": rows, "classes": classes,
            "left": left, "note": note}


EVENT_COLUMNS = ["time", "event", "epoch", "stage"]  # the other fields are its details


def _events(run: RunData) -> list[list[Any]]:
    return [[ev.get(k, "") for k in EVENT_COLUMNS]
            + [", ".join(f"{k}={_detail(v)}" for k, v in ev.items() if k not in EVENT_COLUMNS)]
            for ev in run.events]


def _detail(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, default=str)


def _stages(run: RunData) -> dict[str, Any] | None:
    if not run.rows:
        return None
    stages: dict[str, dict[str, Any]] = {}
    for row, e, acc, lr in zip(run.rows, run.epochs, run.cols.get("val_acc", []),
                               run.cols.get("lr", [])):
        s = stages.setdefault(row.get("stage", ""), {"name": row.get("stage_name", ""),
                                                     "first": e, "best": None, "lr0": lr})
        s["last"], s["lr1"] = e, lr
        if not math.isnan(acc) and (s["best"] is None or acc > s["best"]):
            s["best"] = acc
    def lr(v: float) -> str:
        return "-" if math.isnan(v) else metrics.FORMATS["lr"](v)

    rows = [[k, s["name"], f"{s['first']:.0f}-{s['last']:.0f}", metrics.fmt_pct(s["best"]),
             lr(s["lr0"]), lr(s["lr1"])] for k, s in stages.items()]
    return {"header": ["stage", "name", "epochs", "best val", "lr first", "lr last"],
            "rows": rows}


def _summary(run: RunData) -> list[tuple[str, Any]]:
    best, best_epoch, rule = run.checkpoint_best()
    items: list[tuple[str, Any]] = [("directory", str(run.dir.resolve()))]
    if run.val_images:
        items.append(("val split", split_precision_line(run.val_images)
                      + "; intervals below are Wilson 95% for this size"))
    chosen = f" (rule {rule})" if rule else ""
    items.append(("best.pt", f"epoch {best_epoch}{chosen}: val {run.fmt_acc(best)}"
                  if best is not None else "-"))
    top, top_epoch = run.best("val_acc")
    if top is not None and top_epoch != best_epoch:
        items.append(("highest single-epoch val accuracy", f"{run.fmt_acc(top)} at epoch {top_epoch}"))
    if run.has("ema_val_acc"):
        ema, ema_epoch = run.best("ema_val_acc")
        items.append(("best EMA val accuracy", f"{run.fmt_acc(ema)} at epoch {ema_epoch}"))
    items.append(("last val accuracy", run.fmt_acc(run.last("val_acc"))))
    max_epochs = run.max_epochs
    items.append(("epochs done", f"{run.epochs_done}" + (f" of at most {max_epochs}"
                                                        if max_epochs else "")))
    items.append(("training time", format_duration(run.wall_seconds, clock=True)))
    ips = run.median("images_per_s")
    if ips is not None:
        items.append(("images/s (median)", f"{ips:.0f}"))
    st = run.status
    if st.get("host") or st.get("pid"):
        items.append(("process", f"pid {st.get('pid', '?')} on {st.get('host', '?')}"))
    items += [(key.replace("_", " "), value) for key, value in st.items()
              if key not in ("state", "pid", "host")]
    return items


EVALUATION_DIR = "evaluation"  # what `lowres evaluate` writes inside a run (lowres.predict)


def _evaluation(run_dir: Path) -> dict[str, Any] | None:
    """The most confused pairs and the top-losses grid that `lowres evaluate` wrote into
    RUN/evaluation/, or None (never evaluated, an older lowres's evaluation, unreadable)."""
    folder = Path(run_dir) / EVALUATION_DIR
    try:
        result = json.loads((folder / "evaluation.json").read_text())
    except (OSError, ValueError):
        return None
    pairs = result.get("most_confused") if isinstance(result, dict) else None
    if not isinstance(pairs, list):
        return None
    try:
        rows = [[p["true"], p["predicted"], int(p["count"])] for p in pairs]
    except (KeyError, TypeError, ValueError):
        return None
    accuracy = result.get("accuracy")
    line = f"{result.get('source', '?')}, {result.get('images', '?')} images"
    if isinstance(accuracy, (int, float)):
        line += f", accuracy {100 * accuracy:.2f}%"
    line += f", checkpoint {result.get('checkpoint', '?')}, tta {result.get('tta', '?')}"
    if result.get("tta_views"):
        line += f" ({result['tta_views']} views, plain weight {result.get('tta_beta', '?')})"
    return {"line": line, "header": ["true", "predicted", "images"], "rows": rows,
            "imgs": embedded_images([folder / "top_losses.png"])}


def build_run_report(run: RunData, plot_paths: Sequence[Path]) -> str:
    """The HTML text of a run's report (no file written)."""
    return render("run.html", title=f"lowres run {run.name}", name=run.name, state=run.state,
                  evaluation=_evaluation(run.dir),
                  state_class=STATE_CLASSES.get(run.state, "other"), updated=now_iso(),
                  summary=_summary(run), imgs=embedded_images(plot_paths), stages=_stages(run),
                  metrics=_metrics_table(run), events=_events(run),
                  event_header=[*EVENT_COLUMNS, "details"],
                  config_text=run.config_text, env=list(run.env.items()))


def _current_plots(run_dir: Path) -> list[Path]:
    """plots/*.png, redrawn first when missing or older than metrics.csv."""
    existing = [p for p in (run_dir / "plots" / n for n in PLOT_FILES) if p.is_file()]
    try:
        m_time = (run_dir / "metrics.csv").stat().st_mtime
    except OSError:
        return existing
    if not existing or min(p.stat().st_mtime for p in existing) < m_time:
        return write_run_plots(run_dir)
    return existing


def write_run_report(run_dir: str | Path, strict: bool = False) -> Path:
    """Write run_dir/report.html (atomically) and return its path.

    The plots in run_dir/plots/ are embedded; they are redrawn first when missing or older
    than metrics.csv, so calling `write_run_plots` then `write_run_report` each epoch draws
    them once. Takes well under a second. With `strict=False` (the default, for the training
    loop) an error is reported as one line on stderr instead of raised.
    """
    run_dir = Path(run_dir)
    path = run_dir / "report.html"
    try:
        replace_text(path, build_run_report(load_run(run_dir), _current_plots(run_dir)))
    except Exception as exc:  # a report must never kill training (re-raised when strict)
        if strict:
            raise
        print(f"lowres: warning: {path} not updated: {type(exc).__name__}: {exc}",
              file=sys.stderr)
    return path
