"""`lowres sweep --ray [ADDRESS]`: a sweep's points as Ray tasks across a cluster.

Each point is one Ray task that trains in the worker's own process (so a dead worker leaves
no orphan holding the run's lock) and asks for its share of a GPU (`--per-gpu K`: 1/K) or
one CPU. Run directories live under the sweep's `--out`, which every node must see (a
shared file system): a task that Ray retries after its worker or node died finds the run's
last.pt there and resumes it exactly, so preemptible and spot nodes lose at most the steps
since the last checkpoint (`train.checkpoint_minutes`). Ray is an optional extra
(`pip install 'lowres[ray]'`).
"""
from __future__ import annotations

import socket
import sys
from pathlib import Path

from lowres.errors import LowresError
from lowres.sweep.points import prepare_point
from lowres.run.read import FINISHED, run_state

RETRIES = 3  # a worker or node that dies: the point resumes elsewhere, this many times


def require_ray():
    try:
        import ray
    except ImportError:
        raise LowresError("--ray needs Ray: pip install 'lowres[ray]'") from None
    return ray


def connect(address: str | None):
    """Join the cluster at `address`, or the local one (`ray start --head`), or start one
    here; one line when the address answers nothing."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if address and address != "auto":
        _check_answers(address)  # ray.init would retry an empty address for minutes
    try:
        ray.init(address=address or None, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise LowresError(f"--ray {address or ''}: no Ray cluster answers there ({exc}); start one "
                          f"with `ray start --head` or give its address").strip() from None
    return ray


def _check_answers(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise LowresError(f"--ray {address}: no Ray cluster answers there ({exc}); start one with "
                          f"`ray start --head` or give its address (HOST:PORT)") from None


def train_point(base_config: str, overrides: list[str], run_dir: str) -> str:
    """A Ray task: train (or, when a previous attempt left a checkpoint, resume) one point
    in this worker's process; returns the run's state."""
    from lowres.train.loop import train

    run = Path(run_dir)
    if (run / "config.yaml").is_file():  # an earlier attempt died: go on from its last.pt
        train(None, [o for o in overrides if o.startswith("train.threads=")], resume=run)
    else:
        train(base_config, overrides, run_dir=run)
    return run_state(run)


def run_on_ray(address: str | None, per_gpu: int = 1):
    """An executor for sweep.run_sweep: every point as a Ray task at once; Ray schedules."""

    def execute(base_config: Path, sweep_dir: Path, jobs: list) -> tuple[list[str], str | None]:
        ray = connect(address)
        gpus = 1.0 / per_gpu if ray.cluster_resources().get("GPU") else 0
        task = ray.remote(train_point).options(num_cpus=1, num_gpus=gpus, max_retries=RETRIES,
                                              retry_exceptions=False)
        refs = {}
        for tag, point, overrides in jobs:
            run_dir = sweep_dir / point.name
            if not gpus and not any(o.startswith("train.threads=") for o in overrides):
                overrides = [*overrides, "train.threads=1"]  # the one CPU the task holds
            if prepare_point(run_dir, tag) is not None:
                refs[task.remote(str(base_config), overrides, str(run_dir))] = (tag, point.name)
        failed = []
        try:
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                tag, name = refs[done[0]]
                try:
                    state = ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    state = f"failed ({type(exc).__name__})"
                if state != FINISHED:
                    failed.append(name)
                print(f"sweep: {tag}: {state} ({len(refs) - len(waiting)}/{len(refs)} done)", flush=True)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)  # each run keeps its last checkpoint
            print("sweep: interrupted; rerun the same command to resume the points from their "
                  "last checkpoints", file=sys.stderr)
            return failed, "all running points"
        return failed, None

    return execute
