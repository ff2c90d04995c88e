"""Which test-time augmentation pays: accuracy and seconds per TTA mode on runs' val splits.

For each run (given, or trained here with the CPU recipe), on its val split with its
best.pt: `none`, `flip`, and `aug` (views drawn from the run's own last-stage augmentation,
lowres.predict.tta) with N views blended with the plain view at several weights (beta: the
plain view's weight; "eq" = 1/(N+1), the plain view as one more view), `aug+flip`, and `aug`
with erasing kept in the views (it is left out by default; this row says why). The aug
views are drawn once with 16 views and kept: N views are the first N (each view has its own
seeded generator, so this is exactly what `--tta-views N` predicts). Seconds: real
`probabilities` calls for none, flip and the most views; fewer views are scaled from it by
(1 + N) / (1 + max) (the model's device; load and decode excluded).

    python benchmarks/tta.py RUN_DIR [RUN_DIR ...] [--json out.json]
    python benchmarks/tta.py --train OUT --data /path/tiny40 --classes 10 --seeds 0,1
        # trains OUT/c10_s<seed> with configs/recipes/quick_cpu.yaml at 26+13+1 epochs first
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lowres.predict import tta as tta_mod  # noqa: E402
from lowres.predict.predictions import labelled_images, load_run, probabilities  # noqa: E402
from lowres.predict.tta import TTA, blend, make_views  # noqa: E402

VIEWS = (1, 2, 4, 8, 16)
BETAS = (0.0, 0.25, 0.5, "eq")
EPOCHS = ("stages.0.epochs=26", "stages.1.epochs=13", "stages.2.epochs=1")


def train_runs(out: Path, data: str, classes: int, seeds: list[int]) -> list[Path]:
    runs = []
    for seed in seeds:
        run = out / f"c{classes}_s{seed}"
        if not (run / "checkpoints" / "best.pt").is_file() or "finished" not in (
                (run / "status.json").read_text() if (run / "status.json").is_file() else ""):
            subprocess.run([sys.executable, "-m", "lowres", "train",
                            str(ROOT / "configs/recipes/quick_cpu.yaml"), f"data.root={data}",
                            f"data.classes={classes}", "train.threads=1", f"seed={seed}", *EPOCHS,
                            "--run-dir", str(run)], check=True)
        runs.append(run)
    return runs


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def accuracy(probs: torch.Tensor, labels: np.ndarray) -> float:
    return float((probs.argmax(1).numpy() == labels).mean())


def stack_accuracy(stack: torch.Tensor, beta: float, labels: np.ndarray) -> float:
    return accuracy(blend(stack[0], stack[1:].mean(0), beta), labels)


def all_views(loaded, images, mode: str, views: int) -> torch.Tensor:
    """[1 + views, N, K]: the plain part, then each augmented view."""
    setting = TTA(mode, views=views)
    maker = make_views(setting, loaded.cfg, loaded.pipeline, loaded.engine.policy.device,
                       loaded.eval_batch, loaded.run_dir, keep=True)
    probabilities(loaded, images, setting, views=maker)
    return torch.cat(maker.stacks, dim=1)


def measure(run: Path, device: str, views: tuple[int, ...] = VIEWS, quick: bool = False) -> list[dict]:
    start = time.perf_counter()
    loaded = load_run(run, "best", device)
    found = labelled_images(loaded)
    print(f"{run.name}: {len(found.labels)} images of {found.source} read in "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    images, labels = found.images, found.labels
    n = len(labels)
    rows = []

    def row(mode, views, beta, acc, seconds):
        rows.append({"run": run.name, "mode": mode, "views": views, "beta": beta, "acc": acc,
                     "seconds": seconds, "per_10k_s": None if seconds is None else seconds * 1e4 / n,
                     "images": n})

    probabilities(loaded, images[:64], "none")  # warm-up
    plain, t_none = timed(lambda: probabilities(loaded, images, "none"))
    row("none", 0, None, accuracy(plain, labels), t_none)
    flip, t_flip = timed(lambda: probabilities(loaded, images, "flip"))
    row("flip", 0, None, accuracy(flip, labels), t_flip)
    # Seconds: the call with the most views is timed; N views cost about (1 + N) / (1 + max)
    # of it (one plain pass and N augmented ones; the aug pipeline's cost is per view too).
    most = max(views)
    stack, t_most = timed(lambda: all_views(loaded, images, "aug", most))
    seconds = {v: t_most * (1 + v) / (1 + most) for v in views}
    for v in views:
        mean = stack[1:1 + v].mean(0)
        for beta in BETAS:
            b = 1.0 / (v + 1) if beta == "eq" else beta
            row("aug", v, beta, accuracy(blend(stack[0], mean, b), labels), seconds.get(v))
    if quick:
        return rows
    flip_stack = all_views(loaded, images, "aug+flip", 8)
    for beta in (0.25, 0.5):
        row("aug+flip", 8, beta, stack_accuracy(flip_stack, beta, labels), None)
    saved = dict(tta_mod.NOT_AT_TEST_TIME)
    tta_mod.NOT_AT_TEST_TIME.clear()  # erasing kept in the views
    try:
        erase_stack = all_views(loaded, images, "aug", 8)
    finally:
        tta_mod.NOT_AT_TEST_TIME.update(saved)
    for beta in (0.25, 0.5):
        row("aug+erasing", 8, beta, stack_accuracy(erase_stack, beta, labels), None)
    return rows


def show(rows: list[dict]) -> None:
    print(f"{'run':<10} {'mode':<12} {'N':>3} {'beta':>5} {'acc':>7} {'gain':>6} {'s':>6} {'s/10k':>7}")
    base = {r["run"]: r["acc"] for r in rows if r["mode"] == "none"}
    for r in rows:
        sec = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        per = "" if r["per_10k_s"] is None else f"{r['per_10k_s']:.0f}"
        beta = "" if r["beta"] is None else str(r["beta"])
        print(f"{r['run']:<10} {r['mode']:<12} {r['views'] or '':>3} {beta:>5} {100 * r['acc']:7.2f} "
              f"{100 * (r['acc'] - base[r['run']]):+6.2f} {sec:>6} {per:>7}")
    # The mean gain over runs per setting.
    settings: dict[tuple, list[float]] = {}
    for r in rows:
        settings.setdefault((r["mode"], r["views"], r["beta"]), []).append(r["acc"] - base[r["run"]])
    print("\nmean gain over runs (points):")
    for (mode, views, beta), gains in settings.items():
        print(f"  {mode:<12} {views or '':>3} {'' if beta is None else beta!s:>5} "
              f"{100 * np.mean(gains):+6.2f}  ({len(gains)} runs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--train", type=Path, help="train runs into this directory first")
    parser.add_argument("--data", help="dataset for --train")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument("--views", default=",".join(map(str, VIEWS)), help="view counts (default 1,2,4,8,16)")
    parser.add_argument("--quick", action="store_true", help="leave out the aug+flip and erasing rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = list(args.runs)
    if args.train:
        runs += train_runs(args.train, args.data, args.classes, [int(s) for s in args.seeds.split(",")])
    if not runs:
        parser.error("give run directories or --train OUT --data DATA")
    rows = []
    for run in runs:
        rows += measure(run, args.device, tuple(int(v) for v in args.views.split(",")), args.quick)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n")
    show(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
