"""The run directory: the unit users keep.

    runs/<name>/
      config.yaml        resolved config (enough to rerun)
      metrics.csv        one row per epoch, append-only; a resume truncates it to the checkpoint
      events.jsonl       run/stage starts, LR drops, stops, resumes, interruptions, warnings
      status.json        state (running | finished | stopped | failed), pid, host, resume command
      env.json           versions, device, git commit
      checkpoints/       last.pt, best.pt (see train.checkpoint)
      plots/  report.html

Every file is rewritten atomically (temp file + rename) or appended line by line, so a kill
at any moment leaves readable files.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import socket
from pathlib import Path
from typing import Any

from lowres.basics.disk import append_text, replace_text
from lowres.run.environment import environment
from lowres.run import metrics

EVENT_KINDS = ("run_start", "resume", "stage_start", "lr_drop", "best", "stop", "stage_end",
               "interrupted", "run_end", "warning", "moved", "lr_find", "budget")


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class RunLog:
    """Writes one run directory. Only the process with `enabled=True` (rank 0) writes."""

    def __init__(self, run_dir: str | Path, enabled: bool = True):
        self.dir = Path(run_dir)
        self.enabled = enabled
        if enabled:
            (self.dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            (self.dir / "plots").mkdir(exist_ok=True)

    # -- paths
    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.csv"

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def resume_hint(self) -> str:
        """What to do after freeing space, in a full disk's one line."""
        return f"resume with `lowres train --resume {self.dir}`"

    # -- metrics
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one epoch row: keys are metrics.csv columns (lowres.run.metrics), a key
        left out is an empty cell, a key not in the table raises ValueError."""
        metrics.check_row(row)
        if not self.enabled:
            return
        columns = metrics.columns()
        new = not self.metrics_path.exists() or self.metrics_path.stat().st_size == 0
        if not new:
            self._upgrade_metrics_header()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
        # One write of whole lines; a full disk cuts the file back (disk.append_text).
        append_text(self.metrics_path, buf.getvalue(), fsync=True, then=self.resume_hint)

    def _upgrade_metrics_header(self) -> None:
        """A run started by an older version has fewer columns: rewrite its file with the
        current header (old rows get empty cells) before appending, so one run is one table."""
        columns = metrics.columns()
        with open(self.metrics_path, newline="") as f:
            header = next(csv.reader(f), None)
        if header is None or header == columns:
            return
        with open(self.metrics_path, newline="") as f:
            rows = list(csv.DictReader(f))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        replace_text(self.metrics_path, buf.getvalue())

    def truncate_metrics(self, epochs_done: int) -> None:
        """Keep rows of epochs <= epochs_done: a resumed run continues one curve. What a kill
        left is repaired here: a torn header is written whole, a torn row is dropped."""
        if not self.enabled or not self.metrics_path.exists():
            return
        columns = metrics.columns()
        with open(self.metrics_path, newline="") as f:
            lines = list(csv.reader(f))
        header, rows = (lines[0], lines[1:]) if lines else (list(columns), [])
        # The first append cut inside the header: a prefix of it, with rows (written after
        # the repair of the line) of the full width. (An older header whose columns are
        # all complete and whose rows match it is a format, not a tear.)
        full = ",".join(columns)
        if header != columns and full.startswith(",".join(header)) and (
                header[-1] not in columns or not rows
                or any(len(r) == len(columns) for r in rows)):
            header = list(columns)
        epoch_col = header.index("epoch") if "epoch" in header else 0
        # A row a kill cut short has fewer cells: never keep it (its epoch may be cut too).
        kept = [r for r in rows if len(r) == len(header) and r[epoch_col].isdigit()
                and int(r[epoch_col]) <= epochs_done]
        buf = io.StringIO()
        csv.writer(buf).writerows([header, *kept])
        replace_text(self.metrics_path, buf.getvalue(), self.resume_hint)

    # -- events
    def event(self, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        assert kind in EVENT_KINDS, kind
        record = {"time": now_iso(), "event": kind, **fields}
        append_text(self.events_path, json.dumps(record, default=str) + "\n", then=self.resume_hint)

    # -- status and static files
    def set_status(self, state: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"state": state, "pid": os.getpid(), "host": socket.gethostname(),
                  "updated": now_iso(), **fields}
        replace_text(self.dir / "status.json", json.dumps(record, indent=1) + "\n",
                          self.resume_hint)

    def write_env(self, device: str) -> None:
        if not self.enabled:
            return
        record = {**environment(device), "time": now_iso()}
        replace_text(self.dir / "env.json", json.dumps(record, indent=1) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_metrics(run_dir: str | Path) -> list[dict[str, str]]:
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_events(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill: skip it, keep the rest
    return events


def read_status(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "status.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
