"""What a search leaves in its folder besides the trials: best.yaml (the base config with the
best trial's values, ready for `lowres train`), trials.csv, history.png (best-so-far against
trial number), params.png (each parameter's value against the objective) and report.html.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lowres.basics.disk import replace_text
from lowres.run.read import load_run
from lowres.tune.space import Space, override
from lowres.tune.study import counts, import_optuna, trial_name

BEST_SHOWN = 10  # rows of the report's best-trials table


@dataclass
class TuneResult:
    """What a search holds when `run_tune` returns (all workers' trials, not only ours)."""

    out: Path
    study_name: str
    trials: list[dict[str, Any]] = field(default_factory=list)  # see trial_rows
    best: dict[str, Any] | None = None  # the best finished trial's row
    best_config: Path | None = None  # OUT/best.yaml
    report: Path | None = None  # OUT/report.html
    stopped: bool = False  # a trial was stopped by a signal: rerun the command to resume

    def dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.trials)


def trial_rows(study, out: Path) -> list[dict[str, Any]]:
    """One dict per trial (surplus asks left out): number, name, state (finished, pruned,
    running, stopped (resumable), failed: the run directory's state where it exists), value
    (best val acc for finished trials, the last reported one otherwise), epochs, the
    Wilson interval of the value, seconds, then one column per parameter."""

    optuna = import_optuna()
    words = {optuna.trial.TrialState.COMPLETE: "finished", optuna.trial.TrialState.PRUNED: "pruned",
             optuna.trial.TrialState.RUNNING: "running", optuna.trial.TrialState.FAIL: "failed"}
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):
            continue
        name = trial_name(t.number)
        run_dir = out / "trials" / name
        run = load_run(run_dir) if (run_dir / "config.yaml").is_file() else None
        state = words.get(t.state, t.state.name.lower())
        if run is not None and t.state == optuna.trial.TrialState.RUNNING:
            state = run.state  # running, or stopped (resumable) until a worker resumes it
        value = t.value if t.value is not None else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        interval = run.interval(value) if run is not None and value is not None else None
        rows.append({"number": t.number, "name": name, "state": state, "value": value,
                     "low": interval[0] if interval else None,
                     "high": interval[1] if interval else None,
                     "epochs": run.epochs_done if run is not None else 0,
                     "seconds": run.wall_seconds if run is not None else None,
                     **t.params})
    return rows


def write_best_config(study, out: Path, config_path, overrides: list[str]) -> Path | None:
    from lowres import config as config_mod

    try:
        best = study.best_trial
    except ValueError:
        return None
    cfg = config_mod.load(config_path, [*overrides, *(override(k, v) for k, v in best.params.items())])
    path = out / "best.yaml"
    config_mod.save(cfg, path)
    return path


def history_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Every trial's value by trial number (pruned ones hollow) and the best-so-far line."""
    from lowres.track.plots import new_figure, save_figure

    scored = [r for r in rows if r["value"] is not None]
    if not scored:
        return None
    fig, ax = new_figure()
    done = [r for r in scored if r["state"] == "finished"]
    other = [r for r in scored if r["state"] != "finished"]
    ax.scatter([r["number"] for r in done], [100 * r["value"] for r in done], color="tab:blue",
               label="finished", zorder=3)
    ax.scatter([r["number"] for r in other], [100 * r["value"] for r in other],
               facecolors="none", edgecolors="tab:gray", label="pruned / unfinished (last value)",
               zorder=3)
    xs, ys, best = [], [], None
    for r in sorted(done, key=lambda r: r["number"]):
        best = r["value"] if best is None else max(best, r["value"])
        xs.append(r["number"])
        ys.append(100 * best)
    if xs:
        last = max(r["number"] for r in scored)
        if last > xs[-1]:  # the best stands until the last trial, pruned ones included
            xs.append(last)
            ys.append(ys[-1])
        ax.step(xs, ys, where="post", color="tab:green", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("val accuracy (%)")
    ax.set_title("search history")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def params_plot(rows: list[dict[str, Any]], space: Space, path: Path) -> Path | None:
    """One panel per parameter: its value against the objective (log axis for log ranges)."""
    from lowres.track.plots import new_figure, save_figure

    scored = [r for r in rows if r["value"] is not None]
    if not scored:
        return None
    n = len(space.params)
    fig, axes = new_figure(figsize=(3.2 * n + 0.8, 3.2), panels=n)
    axes = [axes] if n == 1 else list(axes)
    for ax, p in zip(axes, space.params):
        pts = [(r.get(p.key), 100 * r["value"], r["state"] == "finished") for r in scored
               if r.get(p.key) is not None]
        if p.kind == "choice":
            labels = [str(c) for c in p.choices]
            pos = {c: i for i, c in enumerate(labels)}
            pts = [(pos[str(x)], y, f) for x, y, f in pts]
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
        elif p.log:
            ax.set_xscale("log")
        for finished, style in ((True, dict(color="tab:blue")),
                                (False, dict(facecolors="none", edgecolors="tab:gray"))):
            sel = [(x, y) for x, y, f in pts if f == finished]
            if sel:
                ax.scatter([x for x, _ in sel], [y for _, y in sel], **style)
        ax.set_title(p.key, fontsize=9)
        ax.set_ylabel("val accuracy (%)", fontsize=8)
    return save_figure(fig, path)


def write_trials_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    replace_text(path, buf.getvalue())
    return path


def write_outputs(study, space: Space, out: Path, config_path, overrides: list[str],
                  stopped: bool, study_name: str):
    from lowres.track.report import embedded_images, render

    rows = trial_rows(study, out)
    best_path = write_best_config(study, out, config_path, overrides)
    write_trials_csv(rows, out / "trials.csv")
    images = [p for p in (history_plot(rows, out / "history.png"),
                          params_plot(rows, space, out / "params.png")) if p is not None]
    finished = sorted((r for r in rows if r["state"] == "finished"), key=lambda r: -r["value"])
    best = finished[0] if finished else None
    html = render("search.html", title=f"lowres search {study_name}", study_name=study_name,
                  out=str(out), counts=counts(study), best=best, best_rows=finished[:BEST_SHOWN],
                  rows=rows, keys=space.keys, spec=space.spec(),
                  best_config=str(best_path) if best_path else None,
                  images=embedded_images(images))
    replace_text(out / "report.html", html)
    return TuneResult(out, study_name, rows, best, best_path, out / "report.html", stopped)
