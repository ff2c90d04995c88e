"""Does the LR finder's suggestion beat a recipe's fixed LR? Trains the recipe with its own
LRs and with `stages.0.optimizer.lr=find`, over seeds, at most two trainings at once, and
prints each run's final and best val accuracy and the finder's suggestion and time.

    python benchmarks/lr_find.py --data /tmp/work/tiny40 --classes 10 --epochs 26,13,1 \\
        --seeds 0,1 --out /tmp/lr_find_bench

The result on tiny40 is in the header of configs/recipes/quick_cpu.yaml.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "recipes" / "quick_cpu.yaml"


def train(run_dir: Path, args, seed: int, find: bool) -> None:
    if (run_dir / "metrics.csv").is_file():
        return  # already trained (rerun the script to summarise)
    epochs = [f"stages.{i}.epochs={e}" for i, e in enumerate(args.epochs.split(","))] \
        if args.epochs else []
    cmd = [sys.executable, "-m", "lowres", "train", str(RECIPE), f"data.root={args.data}",
           f"data.classes={args.classes}", "train.threads=1", f"seed={seed}", *epochs,
           *(["stages.0.optimizer.lr=find"] if find else []), "--run-dir", str(run_dir)]
    with open(run_dir.with_suffix(".log"), "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)


def summary(run_dir: Path) -> dict:
    rows = list(csv.DictReader((run_dir / "metrics.csv").read_text().splitlines()))
    accs = [float(r["val_acc"]) for r in rows]
    found = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()
             if '"lr_find"' in line]
    return {"run": run_dir.name, "epochs": len(rows), "final_val_acc": accs[-1],
            "best_val_acc": max(accs), "train_s": float(rows[-1]["elapsed"]),
            "found_lr": found[0]["lr"] if found else None,
            "find_s": found[0]["seconds"] if found else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--epochs", default="", help="per stage, e.g. 26,13,1 (default: the recipe's)")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--out", type=Path, default=Path("lr_find_bench"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(args.out / f"{'find' if find else 'fixed'}-s{seed}", seed, find)
            for seed in map(int, args.seeds.split(",")) for find in (False, True)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # a shared machine: two at once
        list(pool.map(lambda job: train(job[0], args, job[1], job[2]), jobs))
    for job in jobs:
        print(summary(job[0]))


if __name__ == "__main__":
    main()
