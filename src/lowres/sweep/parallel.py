"""`lowres sweep --parallel N`: a sweep's points several at a time, each its own process.

Each point is `python -m lowres train ...` (or `--resume`) in a process of its own, pinned
to one GPU through CUDA_VISIBLE_DEVICES (`--per-gpu K` puts K points on each card); on a
CPU machine the N processes share the cores, torch's threads divided between them
(`train.threads`, unless the sweep sets it). Each point's output goes to
SWEEP/logs/<point>.log; the terminal gets one line per start and end. A point's process has
its own session, so a Ctrl-C reaches this process only, which sends each running point one
SIGINT: every point saves its checkpoint and stops, and the same command resumes them
(sweep.prepare_point). Nothing beyond the standard library and lowres itself.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lowres.errors import ConfigError
from lowres.sweep.points import prepare_point
from lowres.run.read import FINISHED, RESUMABLE, run_state

POLL = 0.2  # seconds between looks at the running points


def slots(parallel: int | None, per_gpu: int) -> list[dict[str, str]]:
    """One environment per concurrent point: its GPU, or nothing on a CPU machine."""
    import torch

    if per_gpu < 1:
        raise ConfigError(f"--per-gpu {per_gpu}: give 1 or more points per GPU")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(gpus)]
    count = parallel if parallel is not None else max(1, gpus * per_gpu)
    if count < 1:
        raise ConfigError(f"--parallel {count}: give 1 or more points at a time")
    if not gpus:
        return [{} for _ in range(count)]
    if count > gpus * per_gpu:
        raise ConfigError(f"--parallel {count} but {gpus} GPU(s) x --per-gpu {per_gpu} hold "
                          f"{gpus * per_gpu} points: raise --per-gpu or lower --parallel")
    return [{"CUDA_VISIBLE_DEVICES": ids[i // per_gpu]} for i in range(count)]


@dataclass
class _Running:
    proc: subprocess.Popen
    tag: str
    name: str
    slot: int
    log: object
    started: float = field(default_factory=time.monotonic)


def _command(base_config: Path, overrides: list[str], run_dir: Path, resume: bool) -> list[str]:
    if resume:  # the run's own config.yaml; only what the sweep adds for this machine
        extra = [o for o in overrides if o.startswith("train.threads=")]
        return [sys.executable, "-m", "lowres", "train", "--resume", str(run_dir), *extra]
    return [sys.executable, "-m", "lowres", "train", str(base_config), *overrides,
            "--run-dir", str(run_dir)]


def run_local(parallel: int | None, per_gpu: int = 1):
    """An executor for sweep.run_sweep: the points on this machine, `parallel` at a time."""
    envs = slots(parallel, per_gpu)

    def execute(base_config: Path, sweep_dir: Path, jobs: list) -> tuple[list[str], str | None]:
        return _execute(envs, base_config, sweep_dir, jobs)

    return execute


def _execute(envs: list[dict], base_config: Path, sweep_dir: Path, jobs: list):
    logs = sweep_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // len(envs))
    pending, running, failed = list(jobs), {}, []
    free = list(range(len(envs)))
    stopping: list[str] = []

    def on_signal(signum, frame) -> None:
        if not stopping:
            stopping.append(signal.Signals(signum).name)
            print(f"\nsweep: {stopping[0]} received: each running point saves and stops "
                  f"(rerun the same command to resume)", file=sys.stderr, flush=True)
            for r in running.values():
                _signal(r.proc, signal.SIGINT)

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending or running:
            while pending and free and not stopping:
                tag, point, overrides = pending.pop(0)
                run_dir = sweep_dir / point.name
                resume = prepare_point(run_dir, tag)
                if resume is None:
                    continue
                slot = free.pop(0)
                env = dict(os.environ, **envs[slot])
                if not envs[slot] and not any(o.startswith("train.threads=") for o in overrides):
                    overrides = [*overrides, f"train.threads={threads}"]  # the cores, shared
                log = open(logs / f"{point.name}.log", "a")  # noqa: SIM115 (closed when it ends)
                proc = subprocess.Popen(_command(base_config, overrides, run_dir, resume), env=env,
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
                where = f"GPU {envs[slot]['CUDA_VISIBLE_DEVICES']}" if envs[slot] else f"{threads} thread(s)"
                print(f"sweep: {tag}: running on {where} (log: {log.name})", flush=True)
                running[proc.pid] = _Running(proc, tag, point.name, slot, log)
            time.sleep(POLL)
            for pid in [pid for pid, r in running.items() if r.proc.poll() is not None]:
                r = running.pop(pid)
                r.log.close()
                free.append(r.slot)
                state = run_state(sweep_dir / r.name)
                took = time.monotonic() - r.started
                if state == FINISHED:
                    print(f"sweep: {r.tag}: finished in {took:.0f} s ({_done(jobs, pending, running)})",
                          flush=True)
                elif state == RESUMABLE and stopping:
                    print(f"sweep: {r.tag}: saved and stopped", flush=True)
                else:
                    failed.append(r.name)
                    print(f"sweep: {r.tag}: ended as '{state}' (exit {r.proc.returncode}); see "
                          f"{r.log.name}", flush=True)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for r in running.values():  # only after an error of our own: do not orphan them
            _signal(r.proc, signal.SIGINT)
            r.proc.wait()
    return failed, ("all running points" if stopping else None)


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _done(jobs: list, pending: list, running: dict) -> str:
    return f"{len(jobs) - len(pending) - len(running)}/{len(jobs)} done, {len(running)} running"

