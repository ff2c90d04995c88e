"""Read one run directory into plain Python values, for plots, reports, tables, comparisons.

Everything here is tolerant: a missing or half-written file gives empty values, never an
exception, because these readers run while training writes (and after any kill).

Accuracies are fractions (0..1) here as in metrics.csv and events.jsonl; `fmt_acc` and
`lowres.run.metrics.fmt_pct` show them in percent.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import socket
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from lowres.basics.intervals import accuracy_interval
from lowres.run.lock import held_by_other, pid_alive
from lowres.run.metrics import fmt_pct, to_float
from lowres.run.log import read_events, read_metrics, read_status

# Display states of a run (see `run_state`).
RUNNING = "running"
FINISHED = "finished"
RESUMABLE = "stopped (resumable)"
FAILED = "failed"
PRUNED = "pruned"  # stopped by `lowres tune`'s pruner (status reason "pruned"), resumable


def finite(values) -> list[float]:
    return [v for v in values if not math.isnan(v) and not math.isinf(v)]


@dataclass
class RunData:
    """One run directory, read once. `cols` maps a metrics column to a list of floats."""

    dir: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    cols: dict[str, list[float]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    env: dict[str, Any] = field(default_factory=dict)

    # ---- derived values
    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.dir.name)

    @property
    def epochs(self) -> list[float]:
        return self.cols.get("epoch", [])

    def has(self, column: str) -> bool:
        return bool(finite(self.cols.get(column, [])))

    def best(self, column: str = "val_acc") -> tuple[float | None, int | None]:
        """(highest value of an accuracy column, its epoch) or (None, None) without values."""
        best_v, best_e = None, None
        for e, v in zip(self.epochs, self.cols.get(column, [])):
            if not math.isnan(v) and (best_v is None or v > best_v):
                best_v, best_e = v, int(e) if not math.isnan(e) else None
        return best_v, best_e

    @property
    def val_images(self) -> int | None:
        """The size of the run's val split (metrics.csv `val_images`; older runs: None)."""
        n = self.last("val_images")
        return int(n) if n is not None and n > 0 else None

    def interval(self, acc: float | None) -> tuple[float, float] | None:
        """Wilson 95% interval of a val accuracy for this run's split size (fractions)."""
        return accuracy_interval(acc, self.val_images)

    def fmt_acc(self, acc: float | None) -> str:
        """'48.00% (38.4-57.7)': a val accuracy with its interval when the split size is known."""
        return fmt_pct(acc, self.interval(acc))

    def checkpoint_best(self) -> tuple[float | None, int | None, str | None]:
        """(val accuracy, epoch, rule) of the weights in best.pt: the newest `best` event;
        runs from before the events said so fall back to the highest val accuracy."""
        for ev in reversed(self.events):
            if ev.get("event") == "best":
                acc = to_float(ev.get("val_acc"))
                epoch = to_float(ev.get("epoch"))
                return (None if math.isnan(acc) else acc,
                        None if math.isnan(epoch) else int(epoch), ev.get("rule") or "val_acc")
        best, epoch = self.best("val_acc")
        return best, epoch, None

    def last(self, column: str) -> float | None:
        for v in reversed(self.cols.get(column, [])):
            if not math.isnan(v):
                return v
        return None

    def median(self, column: str) -> float | None:
        values = finite(self.cols.get(column, []))
        return statistics.median(values) if values else None

    @property
    def epochs_done(self) -> int:
        done = finite(self.epochs)
        return int(max(done)) if done else 0

    @property
    def wall_seconds(self) -> float | None:
        return self.last("elapsed")

    @property
    def max_epochs(self) -> int | None:
        stages = self.config.get("stages")
        if not isinstance(stages, list):
            return None
        total = 0
        for stage in stages:
            if isinstance(stage, dict) and isinstance(stage.get("epochs"), int):
                total += stage["epochs"]
        return total

    @property
    def state(self) -> str:
        return run_state(self.dir, self.status)

    def stage_boundaries(self) -> list[tuple[float, str]]:
        """(x, name of the new stage) between the last epoch of a stage and the first of the next."""
        out = []
        prev = None
        for row, e in zip(self.rows, self.epochs):
            stage = row.get("stage")
            if prev is not None and stage != prev and not math.isnan(e):
                out.append((e - 0.5, row.get("stage_name") or f"stage {stage}"))
            prev = stage
        return out

    def lr_drops(self) -> list[tuple[float, float]]:
        """(epoch, new lr) of every `lr_drop` event.

        The epoch is the global epoch after which the drop was decided: the next epoch is
        the first at the new rate (plots draw the drop at epoch + 0.5).
        """
        out = []
        for ev in self.events:
            if ev.get("event") == "lr_drop":
                e = to_float(ev.get("epoch"))
                if not math.isnan(e):
                    out.append((e, to_float(ev.get("lr"))))
        return out

    def started(self) -> float:
        """A sort key: time of the first event, else config.yaml's modification time."""
        for ev in self.events:
            t = ev.get("time")
            if t:
                try:
                    return _dt.datetime.fromisoformat(str(t)).timestamp()
                except ValueError:
                    break
        try:
            return (self.dir / "config.yaml").stat().st_mtime
        except OSError:
            return 0.0


def load_run(run_dir: str | Path) -> RunData:
    """Read metrics, events, status, config and env of a run directory (never raises on content)."""
    run_dir = Path(run_dir)
    rows = [r for r in _quietly(lambda: read_metrics(run_dir), [])
            if r and r.get("epoch") not in (None, "")]
    # csv keys the cells of a row longer than the header None; stage_name is text.
    cols = {key: [to_float(r.get(key)) for r in rows]
            for key in (rows[0] if rows else ()) if key not in (None, "stage_name")}
    config_text = _quietly((run_dir / "config.yaml").read_text, "")
    config = _quietly(lambda: yaml.safe_load(config_text), {})
    env = _quietly(lambda: json.loads((run_dir / "env.json").read_text()), {})
    return RunData(run_dir, rows, cols, events=_quietly(lambda: read_events(run_dir), []),
                   status=read_status(run_dir), config=config if isinstance(config, dict) else {},
                   config_text=config_text, env=env if isinstance(env, dict) else {})


def _quietly(read: Callable[[], Any], default: Any) -> Any:
    """read(), or `default` when the file is missing or unreadable (decode errors are
    ValueErrors)."""
    try:
        return read()
    except (OSError, ValueError, yaml.YAMLError):
        return default


# --------------------------------------------------------------------------- status


def run_state(run_dir: str | Path, status: dict[str, Any] | None = None) -> str:
    """The state a user should see.

    running              status.json says running and its pid is alive on this host
    running? (host H)    status.json says running on another host: cannot check the pid
                         (a read-only run, e.g. a Kaggle input, shows as killed: stopped)
    finished             status.json says finished
    stopped (resumable)  stopped, or running with a dead pid (killed), and checkpoints/last.pt exists
    pruned               stopped by `lowres tune`'s pruner (resumable like a stop)
    failed               failed, or stopped/killed without a checkpoint to resume from
    unknown              no status.json yet
    """
    run_dir = Path(run_dir)
    if status is None:
        status = read_status(run_dir)
    state = status.get("state")
    if state == "running":
        host = status.get("host")
        if host and host != socket.gethostname():
            # A read-only folder (a Kaggle input: the output of a session that was killed)
            # has no writer through this view: it is what a kill leaves.
            if os.access(run_dir, os.W_OK):
                return f"running? (host {host})"
        # A live pid is not enough (pids are reused): when the run has a lock file, the
        # lock must be held too (the kernel drops it when its process dies).
        elif pid_alive(status.get("pid")) and held_by_other(run_dir) is not False:
            return RUNNING
        state = "stopped"  # killed: what is left is what a stop leaves
    if state == "stopped" or not status:
        if (run_dir / "checkpoints" / "last.pt").is_file():
            return PRUNED if status.get("reason") == "pruned" else RESUMABLE
        return FAILED if status else "unknown"
    return str(state)  # finished, failed (the words FINISHED and FAILED)
