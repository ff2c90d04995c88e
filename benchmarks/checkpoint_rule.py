"""Which checkpoint rule picks the best weights from a small validation split? Real data.

Trains through `lowres train` with a large validation split and records, for every epoch,
each val image's correctness and loss. Then, many times over, it draws a small "selection"
split from those images (the size a user would validate on), lets every rule of
`lowres.train.selection` choose an epoch from the selection split's history alone, and
scores the chosen epoch on the remaining val images, which the rule never saw. Every rule
sees the same draws, so the differences between rules are paired.

    python benchmarks/checkpoint_rule.py --data /tmp/tiny40 --classes 0:10 --plan cosine12 --seeds 0,1
    python benchmarks/checkpoint_rule.py --data /tmp/tiny40 --classes 100:110 --plan quick_cpu

--classes A:B builds (once, with symlinks) a competition-layout copy of classes A..B-1 of
a competition-layout dataset, relabelled 0..B-A-1, under --work. Recorded histories are
kept there (history-*.npz), so a rerun with other --select sizes does not train again.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lowres.train import engine as engine_mod  # noqa: E402
from lowres.train.loop import train  # noqa: E402
from lowres.train.selection import RULES, pick_epoch  # noqa: E402

PLANS = {
    # The setting: one stage, warm-up then cosine to zero over 12 epochs.
    "cosine12": lambda recipe: [dict(recipe["stages"][0], epochs=12)],
    # The quick_cpu recipe as shipped: 6 + 3 cosine epochs, then one at a constant lr 0.01.
    "quick_cpu": lambda recipe: recipe["stages"],
}


def class_subset(data: Path, first: int, stop: int, work: Path) -> Path:
    """A competition-layout dataset of classes first..stop-1 (symlinked images)."""
    target = work / f"{data.name}-classes{first}-{stop}"
    if (target / "labels.csv").is_file():
        return target
    (target / "trainval").mkdir(parents=True, exist_ok=True)
    with open(data / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if first <= int(r["Category"]) < stop]
    for r in rows:
        link = target / "trainval" / r["Id"]
        if not link.exists():
            os.symlink((data / "trainval" / r["Id"]).resolve(), link)
    with open(target / "labels.tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Id", "Category"])
        w.writerows([r["Id"], int(r["Category"]) - first] for r in rows)
    os.replace(target / "labels.tmp", target / "labels.csv")
    return target


def record_history(data: Path, plan: str, seed: int, val_fraction: float, work: Path,
                   extra: list[str]) -> Path:
    """Train once; per-epoch correctness/loss of every val image -> history npz."""
    out = work / f"history-{data.name}-{plan}-seed{seed}-val{val_fraction}.npz"
    if out.is_file():
        return out
    recipe = yaml.safe_load((ROOT / "configs/recipes/quick_cpu.yaml").read_text())
    recipe["stages"] = PLANS[plan](recipe)
    recipe["name"] = f"ckpt-{plan}-s{seed}"
    config = work / f"{plan}.yaml"
    config.write_text(yaml.safe_dump(recipe, sort_keys=False))
    correct, losses = [], []
    original = engine_mod.Engine.evaluate_per_image

    def recording(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        correct.append(result.correct.copy())
        losses.append(result.losses.copy())
        return result

    engine_mod.Engine.evaluate_per_image = recording
    try:
        run_dir = work / "runs" / out.stem
        train(config, [f"data.root={data}", f"seed={seed}", f"data.val_fraction={val_fraction}",
                       "train.device=cpu", "train.ema=0", *extra], run_dir=run_dir)
    finally:
        engine_mod.Engine.evaluate_per_image = original
    np.savez_compressed(out, correct=np.stack(correct), losses=np.stack(losses))
    return out


def simulate(history: Path, select: int, draws: int, window: int, seed: int) -> dict:
    """Mean held-out accuracy of each rule's epoch over `draws` selection splits."""
    z = np.load(history)
    correct, losses = z["correct"].astype(np.float64), z["losses"].astype(np.float64)
    epochs, n = correct.shape
    rng = np.random.default_rng(seed)
    held = {rule: [] for rule in (*RULES, "oracle")}
    chosen_epochs = {rule: [] for rule in RULES}
    for _ in range(draws):
        order = rng.permutation(n)
        sel, rest = order[:select], order[select:]
        rows = [{"val_acc": correct[e, sel].mean(), "val_loss": losses[e, sel].mean()}
                for e in range(epochs)]
        rest_acc = correct[:, rest].mean(axis=1)
        for rule in RULES:
            e = pick_epoch(rule, window, rows)
            held[rule].append(rest_acc[e])
            chosen_epochs[rule].append(e + 1)
        held["oracle"].append(rest_acc.max())
    return {"epochs": epochs, "val_images": n,
            "mean": {r: float(np.mean(v)) for r, v in held.items()},
            "vs_val_acc": {r: float(np.mean(np.asarray(held[r]) - np.asarray(held["val_acc"])))
                           for r in RULES},
            "vs_last": {r: float(np.mean(np.asarray(held[r]) - np.asarray(held["last"])))
                        for r in RULES},
            "median_epoch": {r: float(np.median(v)) for r, v in chosen_epochs.items()},
            "per_epoch": correct.mean(axis=1).round(4).tolist()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="competition-layout dataset (e.g. tiny40)")
    ap.add_argument("--classes", default="0:10", help="A:B, classes A..B-1 (relabelled)")
    ap.add_argument("--plan", choices=sorted(PLANS), default="cosine12")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--val-fraction", type=float, default=0.3,
                    help="the recorded val split, from which selection splits are drawn")
    ap.add_argument("--select", default="100,250", help="selection split sizes to simulate")
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--window", type=int, default=3, help="smoothed_acc window (epochs)")
    ap.add_argument("--work", default="/tmp/lowres-checkpoint-rule")
    ap.add_argument("overrides", nargs="*", help="extra key=value for lowres train")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    first, stop = (int(x) for x in args.classes.split(":"))
    data = class_subset(Path(args.data), first, stop, work)
    for seed in (int(s) for s in args.seeds.split(",")):
        history = record_history(data, args.plan, seed, args.val_fraction, work, args.overrides)
        for select in (int(s) for s in args.select.split(",")):
            r = simulate(history, select, args.draws, args.window, seed=1000 + seed)
            print(f"classes {args.classes} plan {args.plan} seed {seed}: {r['epochs']} epochs, "
                  f"selection split {select} of {r['val_images']} val images, "
                  f"held-out on the other {r['val_images'] - select}, {args.draws} draws")
            print(f"  val acc per epoch (all val images): {r['per_epoch']}")
            for rule in (*RULES, "oracle"):
                extra = "" if rule == "oracle" else (
                    f"  vs val_acc {100 * r['vs_val_acc'][rule]:+.2f} pts"
                    f"  vs last {100 * r['vs_last'][rule]:+.2f}"
                    f"  median epoch {r['median_epoch'][rule]:.0f}")
                print(f"  {rule:>13}: held-out {100 * r['mean'][rule]:.2f}%{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
