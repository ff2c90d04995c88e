"""Wall time of 4 trainings of a small model: one after another, `--parallel 2`, and `--ray`
on a local two-node Ray cluster (loopback), measured in the same run, alternated.

    python benchmarks/sweep_parallel.py [--rounds 2] [--epochs 3] [--command sweep|tune]

`sweep` (default): a 4-point grid (2 dropouts x 2 seeds) with `lowres sweep`. `tune`: a
4-trial `lowres tune` search (dropout 0-0.4, sampler seed 0, no pruning, so every variant
trains 4 full trials), where `--ray` means Ray Tune. Prints a Markdown table for
benchmarks/RESULTS.md, with Ray's overhead per trial against the local processes of
`--parallel 2` (both run 2 at a time). Generated data (no download): 10 classes of 40x40
images, resnet8.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lowres.data.synthetic import make_competition_dataset

RAY = str(Path(sys.executable).with_name("ray"))


def sweep(cfg: Path, out: Path, *extra: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lowres", "sweep", str(cfg), "--grid", "model.dropout=0.0,0.2",
                    "--seeds", "0,1", "--out", str(out), *extra], check=True, capture_output=True)
    return time.perf_counter() - start


def tune(cfg: Path, out: Path, *extra: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    space = cfg.with_name("space.yaml")
    space.write_text("model.dropout: {low: 0.0, high: 0.4}\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lowres", "tune", str(cfg), "--space", str(space),
                    "--trials", "4", "--pruner", "none", "--seed", "0", "--out", str(out), *extra],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def start_ray(env: dict) -> tuple[str, float, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    t0 = time.perf_counter()
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common],
                   check=True, capture_output=True, env=env)
    t1 = time.perf_counter()
    subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", *common], check=True,
                   capture_output=True, env=env)
    return f"127.0.0.1:{port}", t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--command", choices=["sweep", "tune"], default="sweep")
    args = ap.parse_args()
    run = sweep if args.command == "sweep" else tune
    work = Path(tempfile.mkdtemp(prefix="lowres-sweep-bench-"))
    os.environ.setdefault("LOWRES_CACHE_DIR", str(work / "cache"))
    data = make_competition_dataset(work / "data", classes=10, per_class=100, test_per_class=1, size=40)
    cfg = work / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"root": str(data), "val_fraction": 0.1}, "model": {"name": "resnet8", "stem": "k3"},
        "train": {"batch_size": 64, "device": "cpu"}, "track": {"plots": False, "report": False},
        "stages": [{"epochs": args.epochs, "augment": [{"op": "hflip", "p": 0.5}]}]}))
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    os.environ.update(RAY_AUTH_MODE="disabled")
    times: dict[str, list[float]] = {"sequential": [], "--parallel 2": [], "--ray (2 nodes x 1 CPU)": []}
    address, head_s, node_s = start_ray(env)
    try:
        for _ in range(args.rounds):
            times["sequential"].append(run(cfg, work / "seq"))
            times["--parallel 2"].append(run(cfg, work / "par", "--parallel", "2"))
            times["--ray (2 nodes x 1 CPU)"].append(run(cfg, work / "ray", "--ray", address))
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True)
    base = min(times["sequential"])
    print(f"lowres {args.command}: 4 trainings x {args.epochs} epochs, resnet8, 900 train images "
          f"40x40; {args.rounds} rounds, alternated; min (all) seconds")
    print("| variant | wall s | vs sequential |\n|---|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {min(values):.1f} ({', '.join(f'{v:.1f}' for v in values)}) | "
              f"{base / min(values):.2f}x |")
    overhead = (min(times["--ray (2 nodes x 1 CPU)"]) - min(times["--parallel 2"])) / 4
    print(f"Ray start-up: head {head_s:.1f} s, second node {node_s:.1f} s; Ray's overhead per "
          f"training against --parallel 2: {overhead:+.1f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
