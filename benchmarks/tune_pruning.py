"""What pruning saves: a `lowres tune` search on tiny40 (classes 0-9) against a grid of the
same size, trained side by side (two processes sharing the machine).

The search: TPE over the learning rate (log range) and dropout, --trials 12 (default), ASHA
pruning on each epoch's val accuracy. The grid: `lowres sweep` over 4 learning rates x 3
dropouts (12 points), every point trained to the end. Both use the same base config (resnet8,
50 images per class by default, one stage of --epochs epochs, cosine schedule, flip
augmentation). Reported: the epochs the search trained against trials x epochs (what the
same trials cost without pruning), and the best val accuracy of each.

    python benchmarks/tune_pruning.py                       # unpacks ../shared/datasets/tiny40 if needed
    python benchmarks/tune_pruning.py --work /tmp/tune-bench --trials 12 --epochs 6
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from epoch import ensure_tiny40  # noqa: E402

from lowres.run.listing import list_runs  # noqa: E402

GRID_LRS = [0.02, 0.05, 0.1, 0.2]
GRID_DROPOUTS = [0.0, 0.2, 0.4]


def base_config(data: Path, epochs: int, per_class: int | None) -> dict:
    return {
        "seed": 0,
        "data": {"root": str(data), "classes": 10, "per_class": per_class, "val_fraction": 0.2},
        "model": {"name": "resnet8", "stem": "k3", "dropout": 0.2},
        "train": {"batch_size": 64, "device": "cpu", "label_smoothing": 0.1},
        "stages": [{"name": "main", "epochs": epochs,
                    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9,
                                  "weight_decay": 5.0e-4},
                    "scheduler": {"name": "cosine", "warmup_epochs": 1},
                    "augment": [{"op": "hflip", "p": 0.5}]}],
        "track": {"plots": False, "report": False, "tensorboard": False},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="tiny40 in the competition layout (default: unpack the shared copy)")
    ap.add_argument("--work", default="/tmp/tune-bench", help="folder for configs, search and grid")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--per-class", type=int, default=50,
                    help="images per class (default 50: 400 train / 100 val; 0 = all 500)")
    ap.add_argument("--grace-epochs", type=int, help="the search's first rung (lowres tune's default: 1)")
    args = ap.parse_args()
    data = ensure_tiny40(args.data)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "base.yaml"
    cfg.write_text(yaml.safe_dump(base_config(data, args.epochs, args.per_class or None), sort_keys=False))
    space = work / "space.yaml"
    space.write_text(f"stages.0.optimizer.lr: {{low: {min(GRID_LRS)}, high: {max(GRID_LRS)}, log: true}}\n"
                     f"model.dropout: {{low: {min(GRID_DROPOUTS)}, high: {max(GRID_DROPOUTS)}}}\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), LOWRES_PROGRESS="0",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    lowres = [sys.executable, "-m", "lowres"]
    search_cmd = [*lowres, "tune", str(cfg), "--space", str(space), "--trials", str(args.trials),
                  "--out", str(work / "search"), "--pruner", "asha", "--seed", "0"]
    if args.grace_epochs:
        search_cmd += ["--grace-epochs", str(args.grace_epochs)]
    grid_cmd = [*lowres, "sweep", str(cfg), "--out", str(work / "grid"),
                "--grid", "stages.0.optimizer.lr=" + ",".join(map(str, GRID_LRS)),
                "--grid", "model.dropout=" + ",".join(map(str, GRID_DROPOUTS))]
    start = time.time()
    with open(work / "search.log", "a") as slog, open(work / "grid.log", "a") as glog:
        procs = {"search": subprocess.Popen(search_cmd, env=env, stdout=slog, stderr=subprocess.STDOUT),
                 "grid": subprocess.Popen(grid_cmd, env=env, stdout=glog, stderr=subprocess.STDOUT)}
        ended = {}
        while len(ended) < len(procs):
            for name, proc in procs.items():
                if name not in ended and proc.poll() is not None:
                    ended[name] = time.time() - start
                    print(f"{name} ended (exit {proc.returncode}) after {ended[name] / 60:.1f} min",
                          flush=True)
            time.sleep(5)
    with open(work / "search" / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    epochs_run = sum(int(t["epochs"]) for t in trials)
    full = len(trials) * args.epochs
    pruned = sum(t["state"] == "pruned" for t in trials)
    search_best = max(float(t["value"]) for t in trials if t["state"] == "finished")
    grid = [r for r in list_runs(work / "grid") if r["best_val_acc"] is not None]
    grid_best = max(r["best_val_acc"] for r in grid)
    grid_epochs = sum(r["epochs_done"] for r in grid)
    hw = f"{platform.machine()}, {os.cpu_count()} cores, no GPU"
    print(f"hardware: {hw}; search {ended['search'] / 60:.1f} min, grid {ended['grid'] / 60:.1f} min "
          "(run side by side)")
    print(f"search: {len(trials)} trials, {pruned} pruned, {epochs_run} trial-epochs of {full} "
          f"without pruning: {full - epochs_run} saved ({100 * (full - epochs_run) / full:.0f}%); "
          f"best val acc {search_best:.4f}")
    print(f"grid: {len(grid)} points, {grid_epochs} trial-epochs, best val acc {grid_best:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
