"""Wall time of a 4-point sweep of a small model: one after another, `--parallel 2`, and
`--ray` on a local two-node Ray cluster (loopback), measured in the same run, alternated.

    python benchmarks/sweep_parallel.py [--rounds 2] [--epochs 3]

Prints a Markdown table for benchmarks/RESULTS.md. Generated data (no download): 10 classes
of 40x40 images, resnet8; every variant trains the same 4 points (2 dropouts x 2 seeds).
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
    args = ap.parse_args()
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
            times["sequential"].append(sweep(cfg, work / "seq"))
            times["--parallel 2"].append(sweep(cfg, work / "par", "--parallel", "2"))
            times["--ray (2 nodes x 1 CPU)"].append(sweep(cfg, work / "ray", "--ray", address))
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True)
    base = min(times["sequential"])
    print(f"4 points x {args.epochs} epochs, resnet8, 900 train images 40x40; {args.rounds} rounds, "
          f"alternated; min (all) seconds")
    print("| variant | wall s | vs sequential |\n|---|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {min(values):.1f} ({', '.join(f'{v:.1f}' for v in values)}) | "
              f"{base / min(values):.2f}x |")
    print(f"Ray start-up: head {head_s:.1f} s, second node {node_s:.1f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
