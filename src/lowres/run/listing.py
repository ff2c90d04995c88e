"""`lowres runs [DIR]`: every run directory under DIR as one aligned text table.

A run directory is any directory holding a config.yaml; DIR is searched recursively (hidden
directories and the inside of a run directory are skipped), so the runs of a sweep show too.
In a `lowres tune` folder (one with a search.json), each trial also shows its values of the
searched keys (a PARAMS column).
"""
from __future__ import annotations

import os
import json
from pathlib import Path
from typing import Any

from lowres.basics.durations import format_duration
from lowres.run.metrics import fmt_pct
from lowres.run.read import RunData, load_run


def find_run_dirs(root: str | Path) -> list[Path]:
    """Directories under `root` (root included) that hold a config.yaml, in walk order."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if "config.yaml" in files:
            found.append(Path(here))
            dirs[:] = []  # a run's checkpoints/ and plots/ hold no runs
    return found


def list_runs(root: str | Path = "runs") -> list[dict[str, Any]]:
    """One dict per run directory under `root`, newest first (by run start time).

    Keys: path (Path), name (path relative to root, or the directory name when the run is
    root itself), status (running | finished | stopped (resumable) | failed | unknown |
    running? (host H)), config (short summary: model, stages, max epochs, batch size),
    model, stages, max_epochs, batch_size, best_val_acc and last_val_acc (fractions or None),
    best_epoch (the epoch in best.pt and the val accuracy there; checkpoint_rule: the rule
    that chose it, None for older runs), val_images (the split's size, None for older runs),
    best_val_interval / last_val_interval (Wilson 95%, fractions, or None), epochs_done,
    wall_seconds (last `elapsed`), started (a POSIX time); in a search folder also params
    (searched key -> the trial's value).
    A missing root gives [].
    """
    root = Path(root)
    searched = searched_keys(root)
    rows = []
    for run_dir in find_run_dirs(root):
        run = load_run(run_dir)
        cfg = run.config
        stages = cfg.get("stages") if isinstance(cfg.get("stages"), list) else None
        best, best_epoch, rule = run.checkpoint_best()
        last = run.last("val_acc")
        rows.append({
            "path": run_dir,
            "name": run_dir.relative_to(root).as_posix() if run_dir != root else run_dir.name,
            "status": run.state,
            "config": config_summary(run),
            "model": _section(cfg, "model").get("name"),
            "stages": len(stages) if stages is not None else None,
            "max_epochs": run.max_epochs,
            "batch_size": _section(cfg, "train").get("batch_size"),
            "best_val_acc": best,
            "best_epoch": best_epoch,
            "last_val_acc": last,
            "checkpoint_rule": rule,
            "val_images": run.val_images,
            "best_val_interval": run.interval(best),
            "last_val_interval": run.interval(last),
            "epochs_done": run.epochs_done,
            "wall_seconds": run.wall_seconds,
            "started": run.started(),
            **({"params": {k: dotted(cfg, k) for k in searched}} if searched else {}),
        })
    rows.sort(key=lambda r: (r["started"], r["name"]), reverse=True)
    return rows


def searched_keys(root: Path) -> list[str]:
    """The dotted keys a `lowres tune` folder searches (its search.json), else []."""
    try:
        space = json.loads((root / "search.json").read_text()).get("space")
    except (OSError, ValueError, AttributeError):
        return []
    return list(space) if isinstance(space, dict) else []


def dotted(config: dict[str, Any], key: str) -> Any:
    """config['stages'][0]['optimizer']['lr'] for 'stages.0.optimizer.lr' (None if absent)."""
    node: Any = config
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _params_text(params: dict[str, Any]) -> str:
    from lowres.config.tree import short_keys

    short = short_keys(list(params))
    return " ".join(f"{short[k]}={v:.4g}" if isinstance(v, float) else f"{short[k]}={v}"
                    for k, v in params.items())


def format_runs_table(rows: list[dict[str, Any]]) -> str:
    """A plain aligned text table of `list_runs` rows (no trailing newline)."""
    if not rows:
        return "no runs found (a run directory is a directory with a config.yaml)"
    header = ["RUN", "STATUS", "BEST.PT VAL (95%)", "LAST VAL (95%)", "EPOCHS", "WALL",
              "CONFIG"]
    with_params = any("params" in r for r in rows)
    if with_params:
        header.append("PARAMS")
    table = [header]
    for r in rows:
        best = fmt_pct(r.get("best_val_acc"), r.get("best_val_interval"))
        if r.get("best_epoch") is not None:
            best += f" @{r['best_epoch']}"
        epochs = str(r.get("epochs_done", 0))
        if r.get("max_epochs"):
            epochs += f"/{r['max_epochs']}"
        table.append([str(r.get("name", "")), str(r.get("status", "")), best,
                      fmt_pct(r.get("last_val_acc"), r.get("last_val_interval")), epochs,
                      format_duration(r.get("wall_seconds"), clock=True), str(r.get("config", ""))]
                     + ([_params_text(r.get("params") or {})] if with_params else []))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {2, 3, 4, 5}
    lines = []
    for row in table:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def config_summary(run: RunData) -> str:
    """'resnet50, 2 stages, <=140 ep, bs 200' (parts missing from the config are left out)."""
    stages = run.config.get("stages")
    batch_size = _section(run.config, "train").get("batch_size")
    parts = [str(_section(run.config, "model").get("name") or "")]
    if isinstance(stages, list):
        parts += [f"{len(stages)} stage{'s' if len(stages) != 1 else ''}", f"<={run.max_epochs} ep"]
    if batch_size is not None:
        parts.append(f"bs {batch_size}")
    return ", ".join(p for p in parts if p)
