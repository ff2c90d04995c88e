"""report.html: one self-contained page per run (and per comparison).

The page has no scripts, no external styles or fonts, and embeds its plots as base64 PNG
data URIs, so a single file can be mailed, archived or opened from any browser offline.
It is rewritten atomically at the end of every epoch, so a run killed at any moment still
has a current report.
"""
from __future__ import annotations

import base64
import html
import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from lowres.intervals import fmt_interval_pct, split_precision_line
from lowres.track.plots import PLOT_FILES, write_run_plots
from lowres.track.rundata import RunData, fmt_duration, fmt_number, fmt_pct, load_run
from lowres.track.runlog import METRIC_COLUMNS, atomic_write_text, now_iso

TABLE_LAST_N = 40  # metrics rows shown in full; older epochs are summarised by the best row

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.muted{color:#666;font-size:13px}
.state{display:inline-block;padding:2px 8px;border-radius:10px;font-size:13px;color:#fff}
.running{background:#1f77b4}.finished{background:#2ca02c}.resumable{background:#ff7f0e}
.failed{background:#d62728}.other{background:#7f7f7f}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}tr.best td{background:#fff3c4}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:10px;font-size:12px;overflow:auto}
img{max-width:100%;height:auto;margin:4px 0}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}
dl.kv dt{color:#555}dl.kv dd{margin:0}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def png_data_uri(path: str | Path) -> str | None:
    """The PNG at `path` as a data: URI, or None when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def img_tag(path: str | Path, alt: str) -> str:
    uri = png_data_uri(path)
    if uri is None:
        return ""
    return f'<img src="{uri}" alt="{esc(alt)}">'


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1,
               row_classes: Sequence[str] | None = None) -> str:
    """A <table>; the first `left` columns are left-aligned. Cells are escaped."""
    out = ["<table><thead><tr>"]
    out += [f'<th class="l">{esc(h)}</th>' if i < left else f"<th>{esc(h)}</th>"
            for i, h in enumerate(header)]
    out.append("</tr></thead><tbody>")
    for n, row in enumerate(rows):
        cls = row_classes[n] if row_classes and n < len(row_classes) and row_classes[n] else ""
        out.append(f'<tr class="{cls}">' if cls else "<tr>")
        out += [f'<td class="l">{esc(c)}</td>' if i < left else f"<td>{esc(c)}</td>"
                for i, c in enumerate(row)]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def kv_list(items: Iterable[tuple[str, Any]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>"
                                       for k, v in items) + "</dl>"


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
            "</body></html>\n")


def state_badge(state: str) -> str:
    cls = {"running": "running", "finished": "finished", "stopped (resumable)": "resumable",
           "failed": "failed"}.get(state, "other")
    return f'<span class="state {cls}">{esc(state)}</span>'


# --------------------------------------------------------------------------- run report


def _cell(run: RunData, row: dict[str, str], col: str) -> str:
    raw = row.get(col, "")
    if raw in ("", None):
        return ""
    if col in ("train_acc", "val_acc", "ema_val_acc"):
        try:
            text = f"{float(raw) * run.acc_factor:.2f}"
        except ValueError:
            return raw
        low, high = _float(row.get(f"{col}_low")), _float(row.get(f"{col}_high"))
        if not (math.isnan(low) or math.isnan(high)):
            text += f" {fmt_interval_pct(low * run.acc_factor, high * run.acc_factor)}"
        return text
    if col in ("train_loss", "val_loss", "ema_val_loss"):
        try:
            return f"{float(raw):.4g}"
        except ValueError:
            return raw
    if col == "lr":
        try:
            return f"{float(raw):.4g}"
        except ValueError:
            return raw
    if col in ("images_per_s",):
        try:
            return f"{float(raw):.0f}"
        except ValueError:
            return raw
    if col in ("seconds",):
        try:
            return f"{float(raw):.1f}"
        except ValueError:
            return raw
    if col == "elapsed":
        return fmt_duration(_float(raw))
    return raw


def _float(raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


def _metrics_table(run: RunData) -> str:
    if not run.rows:
        return '<p class="muted">no epochs yet</p>'
    cols = [c for c in METRIC_COLUMNS if c in run.rows[0]]
    # Drop columns that are empty in every row (e.g. EMA when off).
    cols = [c for c in cols if any(r.get(c) not in ("", None) for r in run.rows)]
    # The interval is shown inside the val acc cell; its bounds need no columns of their own.
    cols = [c for c in cols if c not in ("val_images", "val_acc_low", "val_acc_high")]
    _, best_epoch, _ = run.checkpoint_best()
    shown = list(range(max(0, len(run.rows) - TABLE_LAST_N), len(run.rows)))
    note = ""
    if len(run.rows) > TABLE_LAST_N:
        best_idx = next((i for i, e in enumerate(run.epochs) if best_epoch is not None
                         and e == best_epoch), None)
        if best_idx is not None and best_idx not in shown:
            shown.insert(0, best_idx)
        note = (f'<p class="muted">the best epoch and the last {TABLE_LAST_N} of '
                f"{len(run.rows)} epochs; all epochs are in metrics.csv</p>")
    header = [c.replace("_", " ") + (" %" if c.endswith("_acc") else "") for c in cols]
    rows, classes = [], []
    for i in shown:
        r = run.rows[i]
        rows.append([_cell(run, r, c) for c in cols])
        classes.append("best" if best_epoch is not None and _float(r.get("epoch")) == best_epoch
                       else "")
    left = 3 if "stage_name" in cols else 1
    return note + html_table(header, rows, left=left, row_classes=classes)


def _events_table(run: RunData) -> str:
    if not run.events:
        return '<p class="muted">no events</p>'
    rows = []
    for ev in run.events:
        rest = {k: v for k, v in ev.items() if k not in ("time", "event", "epoch", "stage")}
        rows.append([ev.get("time", ""), ev.get("event", ""), ev.get("epoch", ""),
                     ev.get("stage", ""), ", ".join(f"{k}={_detail(v)}" for k, v in rest.items())])
    return html_table(["time", "event", "epoch", "stage", "details"], rows, left=2)


def _detail(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, default=str)


def _stages_table(run: RunData) -> str:
    if not run.rows:
        return ""
    stages: dict[str, dict[str, Any]] = {}
    for row, e, acc, lr in zip(run.rows, run.epochs, run.acc("val_acc"), run.cols.get("lr", [])):
        key = row.get("stage", "")
        s = stages.setdefault(key, {"name": row.get("stage_name", ""), "first": e, "last": e,
                                    "best": None, "lr0": lr, "lr1": lr})
        s["last"], s["lr1"] = e, lr
        if not math.isnan(acc) and (s["best"] is None or acc > s["best"]):
            s["best"] = acc
    rows = [[k, s["name"], f"{s['first']:.0f}-{s['last']:.0f}", fmt_pct(s["best"]),
             fmt_number(s["lr0"]), fmt_number(s["lr1"])] for k, s in stages.items()]
    return html_table(["stage", "name", "epochs", "best val", "lr first", "lr last"], rows, left=2)


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
    items.append(("last val accuracy", run.fmt_acc(run.last("val_acc", percent=True))))
    max_epochs = run.max_epochs
    items.append(("epochs done", f"{run.epochs_done}" + (f" of at most {max_epochs}"
                                                        if max_epochs else "")))
    items.append(("training time", fmt_duration(run.wall_seconds)))
    ips = run.median("images_per_s")
    if ips is not None:
        items.append(("images/s (median)", f"{ips:.0f}"))
    st = run.status
    if st.get("host") or st.get("pid"):
        items.append(("process", f"pid {st.get('pid', '?')} on {st.get('host', '?')}"))
    for key, value in st.items():
        if key not in ("state", "pid", "host"):
            items.append((key.replace("_", " "), value))
    return items


def build_run_report(run: RunData, plot_paths: Sequence[Path]) -> str:
    """The HTML text of a run's report (no file written)."""
    title = f"lowres run {run.name}"
    state = run.state
    parts = [f"<h1>{esc(run.name)} {state_badge(state)}</h1>",
             f'<p class="muted">report updated {esc(now_iso())}</p>',
             "<h2>Summary</h2>", kv_list(_summary(run))]
    parts.append("<h2>Curves</h2>")
    imgs = [img_tag(p, p.stem) for p in plot_paths]
    imgs = [i for i in imgs if i]
    if imgs:
        parts += imgs
        parts.append('<p class="muted">grey dashed lines: stage boundaries; red dotted lines: '
                     "learning-rate drops; star: best val accuracy</p>")
    else:
        parts.append('<p class="muted">no curves yet</p>')
    stages = _stages_table(run)
    if stages:
        parts += ["<h2>Stages</h2>", stages]
    parts += ["<h2>Metrics per epoch</h2>", _metrics_table(run)]
    parts += ["<h2>Events</h2>", _events_table(run)]
    parts += ["<h2>Config</h2>",
              f"<pre>{esc(run.config_text) if run.config_text else 'no config.yaml'}</pre>"]
    parts += ["<h2>Environment</h2>",
              kv_list((k, v) for k, v in run.env.items()) if run.env
              else '<p class="muted">no env.json</p>']
    return page(title, "\n".join(parts))


def _current_plots(run_dir: Path) -> list[Path]:
    """plots/*.png, redrawn first when missing or older than metrics.csv."""
    plots = [run_dir / "plots" / n for n in PLOT_FILES]
    metrics = run_dir / "metrics.csv"
    try:
        m_time = metrics.stat().st_mtime
    except OSError:
        return [p for p in plots if p.is_file()]
    existing = [p for p in plots if p.is_file()]
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
        plots = _current_plots(run_dir)
        text = build_run_report(load_run(run_dir), plots)
        atomic_write_text(path, text)
    except Exception as exc:  # noqa: BLE001 - a report must never kill training
        if strict:
            raise
        print(f"lowres: warning: {path} not updated: {type(exc).__name__}: {exc}",
              file=sys.stderr)
    return path


# --------------------------------------------------------------------------- comparisons


def write_comparison_report(out_dir: str | Path, title: str, images: Sequence[Path],
                            tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]]]],
                            notes: Sequence[str] = (),
                            runs: Sequence[tuple[str, str]] = (),
                            caption: str | None = None) -> Path:
    """Write out_dir/report.html for a comparison and return its path.

    images: PNG files to embed; tables: (heading, header, rows) each; notes: lines shown
    under "Notes" (for example the seed-spread verdicts); runs: (label, run directory)
    pairs listed at the top. `lowres.track.compare.compare_runs` fills these in.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>{esc(title)}</h1>", f'<p class="muted">written {esc(now_iso())}</p>']
    if runs:
        parts += ["<h2>Runs</h2>", html_table(["run", "directory"], runs, left=2)]
    for heading, header, rows in tables:
        parts += [f"<h2>{esc(heading)}</h2>", html_table(header, rows, left=1)]
    if notes:
        parts += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes)
                  + "</ul>"]
    if images:
        parts.append("<h2>Curves</h2>")
        parts += [img_tag(p, Path(p).stem) for p in images]
        parts.append(f'<p class="muted">{esc(caption)}</p>' if caption else
                     '<p class="muted">one colour per run; solid: val, dashed: train; thin '
                     "dashed vertical lines: stage boundaries; triangles: learning-rate drops"
                     "</p>")
    path = out_dir / "report.html"
    atomic_write_text(path, page(title, "\n".join(p for p in parts if p)))
    return path
