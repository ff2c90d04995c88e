"""SIGKILL a training run at random moments, resume it each time, compare with a run never
stopped. Shared by tests/faults/test_kill_anywhere.py (a few kills per test run) and
tests/faults/soak.py (many, opt-in)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lowres.run.log import read_metrics, read_status
from lowres.run import checkpoint

DRIVER = Path(__file__).with_name("kill_driver.py")
TIMING = {"images_per_s", "seconds", "elapsed"}
# Occurrences of each moment in one run of `kill_config` (2 epochs x 4 steps, a checkpoint
# after every step): a draw past the end of what is left finishes the run unkilled.
MOMENTS = {"step": 8, "checkpoint": 14, "rename": 14, "metrics": 2, "events": 8, "config": 1}


def kill_config(write_config, path: Path, data: Path) -> Path:
    return write_config(path, data, train={"checkpoint_minutes": 1e-9})  # save every step


def _env() -> dict:
    return dict(os.environ, LOWRES_PROGRESS="0", OMP_NUM_THREADS="1")


def run_cli(args: list[str], moment: str = "none", n: int = 0, timeout: float = 300) -> int:
    cmd = [sys.executable, str(DRIVER), moment, str(n), "--", *args]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.returncode


def draw(rng: random.Random) -> tuple[str, int]:
    moment = rng.choice(sorted(MOMENTS))
    return moment, rng.randint(1, MOMENTS[moment])


@dataclass
class Outcome:
    kills: list[tuple[str, int]] = field(default_factory=list)  # (moment, n) that struck
    processes: int = 0


def killed_run(cfg: Path, run: Path, plan: list[tuple[str, int]]) -> Outcome:
    """Train `cfg` into `run`, SIGKILLed at each (moment, n) of `plan` in turn: after a kill
    the run is resumed (or started again when the kill came before config.yaml existed, as
    a user would), then trained to the end."""
    out = Outcome()
    for moment, n in [*plan, ("none", 0)]:
        if read_status(run).get("state") == "finished":
            break  # a draw past the end of the run: it finished unkilled
        if (run / "config.yaml").is_file():
            args = ["train", "--resume", str(run)]
        else:
            args = ["train", str(cfg), "--run-dir", str(run)]
        out.processes += 1
        if run_cli(args, moment, n) == -signal.SIGKILL:
            out.kills.append((moment, n))
    return out


def wall_clock_killed_run(cfg: Path, run: Path, delays: list[float]) -> Outcome:
    """The same with kills at random wall-clock times (start-up included), from outside."""
    out = Outcome()
    for delay in [*delays, None]:
        if read_status(run).get("state") == "finished":
            break
        args = (["train", "--resume", str(run)] if (run / "config.yaml").is_file()
                else ["train", str(cfg), "--run-dir", str(run)])
        proc = subprocess.Popen([sys.executable, str(DRIVER), "none", "0", "--", *args],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        out.processes += 1
        if delay is not None:
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                out.kills.append(("wall", round(delay, 2)))
        _, err = proc.communicate(timeout=300)
        if proc.returncode not in (0, -signal.SIGKILL):
            raise AssertionError(f"exited {proc.returncode}:\n{err[-3000:]}")
    return out


def differences(straight: Path, run: Path) -> list[str]:
    """What differs between two finished runs (weights, EMA, metric rows): [] = bitwise equal."""
    a = checkpoint.load(straight / "checkpoints" / "last.pt")
    b = checkpoint.load(run / "checkpoints" / "last.pt")
    found = [f"model.{k}" for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    if a["ema"] is not None:
        found += [f"ema.{k}" for k in a["ema"] if not torch.equal(a["ema"][k], b["ema"][k])]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    if strip(read_metrics(straight)) != strip(read_metrics(run)):
        found.append("metrics.csv rows")
    return found


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0
