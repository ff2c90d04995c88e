"""Slow epoch-end work off the training critical path: checkpoint files, plots, report.

A checkpoint of the seed's ResNet50 with momentum is ~190 MB, written and fsynced; plots
and report.html redraw every curve. On a GPU an epoch of the seed's plan can take seconds,
so doing this in line would cost a good share of the run. Here the training thread only
copies the state (a snapshot, so training can go on changing the weights) and a worker
thread writes it. Checkpoints are never dropped: they are written in order, and at most
MAX_PENDING snapshots (an epoch end's best.pt and last.pt) wait at a time; a new one waits
for the oldest. A report refresh that finds
the previous one still running is skipped: the next epoch's, or the final one, shows it all.
Errors of a checkpoint write come back to the training thread at the next call.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import torch


def snapshot(value: Any) -> Any:
    """A deep copy of a state tree with every tensor copied to the CPU: what a worker can
    write while training continues to change the original tensors in place."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    return value


class BackgroundWriter:
    MAX_PENDING = 2

    def __init__(self, enabled: bool = True):
        self.enabled = enabled  # False: run everything in line (tests, debugging)
        self._checkpoints = ThreadPoolExecutor(1, thread_name_prefix="lowres-checkpoint")
        self._reports = ThreadPoolExecutor(1, thread_name_prefix="lowres-report")
        self._pending: list[Future] = []
        self._last_report: Future | None = None
        self._lock = threading.Lock()

    def checkpoint(self, write: Callable[[], None]) -> None:
        """Run `write` (which must own its data: see `snapshot`) after earlier checkpoints."""
        if not self.enabled:
            write()
            return
        while self._pending and self._pending[0].done():  # a failed write stops the run now
            self._pending.pop(0).result()
        while len(self._pending) >= self.MAX_PENDING:
            self._pending.pop(0).result()
        self._pending.append(self._checkpoints.submit(write))

    def report(self, refresh: Callable[[], None]) -> None:
        """Run `refresh` unless the previous refresh is still running."""
        if not self.enabled:
            refresh()
            return
        with self._lock:
            if self._last_report is not None and not self._last_report.done():
                return
            self._last_report = self._reports.submit(refresh)

    def wait_checkpoints(self) -> None:
        """Block until every checkpoint is on disk; re-raise a write's error here."""
        while self._pending:
            self._pending.pop(0).result()

    def wait(self) -> None:
        """Block until everything submitted is done (checkpoint errors re-raised)."""
        self.wait_checkpoints()
        if self._last_report is not None:
            self._last_report.result()  # report errors are logged by the refresh itself

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._checkpoints.shutdown(wait=True)
            self._reports.shutdown(wait=True)
