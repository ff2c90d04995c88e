"""lowres against fastai at equal footing: the same images, the same validation split, the
same machine, one after the other, wall time measured around each whole process.

    python benchmarks/vs_fastai.py --data TINY40 --classes 10 --seeds 0 1 \
        --fastai-python VENV/bin/python --lowres configs/recipes/quick_cpu.yaml [key=value ...]

fastai is never a dependency of lowres: it runs in its own virtualenv
(`python -m venv VENV && VENV/bin/pip install torch==2.14.1 torchvision==0.29.1 fastai`),
through benchmarks/vs_fastai_side.py, with the recipe its docs teach for training from
scratch: xresnet18, aug_transforms(), lr_find() (valley), fit_one_cycle(--epochs), then its
TTA. lowres trains CONFIG with the overrides and is scored with its default `evaluate`
(its default TTA). Both use the subset written here: the first --classes classes of a
competition-layout dataset, split once (10% per class, seed 0) into train/<class>/ and
val/<class>/ of links to the original files, so both read the same JPEGs and score on the
same images. Each lowres run gets an empty image cache, so its wall time includes decoding.
Prints a table and writes every figure as JSON (--out).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lowres.data.prepare import select, stratified_split  # noqa: E402


def write_subset(data: Path, classes: int, out: Path, val_fraction: float = 0.1) -> Path:
    """train/<class>/ and val/<class>/ of symlinks to the first `classes` classes of DATA."""
    if (out / "val").is_dir():
        return out
    rows = list(csv.DictReader((data / "labels.csv").open()))
    labels = np.asarray([int(r["Category"]) for r in rows], dtype=np.int64)
    keep = select(labels, classes, None)
    train, val = stratified_split(labels[keep], val_fraction, seed=0)
    for split, positions in (("train", train), ("val", val)):
        for i in keep[positions]:
            folder = out / split / f"c{labels[i]:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = rows[i]["Id"]
            name = name if name.endswith(".jpg") else f"{name}.jpg"
            (folder / name).symlink_to((data / "trainval" / name).resolve())
    return out


def run_fastai(python: str, subset: Path, seed: int, epochs: int, batch: int) -> dict:
    t0 = time.time()
    proc = subprocess.run([python, str(ROOT / "benchmarks" / "vs_fastai_side.py"), str(subset),
                           str(seed), str(epochs), str(batch)], capture_output=True, text=True)
    wall = time.time() - t0
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"fastai run failed (seed {seed}):\n{proc.stderr[-3000:]}")
    return {**json.loads(line[len("RESULT "):]), "wall": wall}


def run_lowres(config: str, overrides: list[str], subset: Path, seed: int, runs: Path) -> dict:
    run_dir = runs / f"lowres-seed{seed}"
    env = {**os.environ, "LOWRES_CACHE_DIR": tempfile.mkdtemp(prefix="vs-fastai-cache-"),
           "LOWRES_PROGRESS": "0"}
    lowres = [sys.executable, "-m", "lowres"]
    t0 = time.time()
    subprocess.run([*lowres, "train", config, f"data.root={subset}", f"seed={seed}", *overrides,
                    "--run-dir", str(run_dir)], check=True, env=env, stdout=subprocess.DEVNULL)
    train_wall = time.time() - t0
    t1 = time.time()
    subprocess.run([*lowres, "evaluate", str(run_dir)], check=True, env=env, stdout=subprocess.DEVNULL)
    result = json.loads((run_dir / "evaluation" / "evaluation.json").read_text())
    return {"seed": seed, "val_acc": result["accuracy"], "tta": result.get("tta"),
            "val_images": result["images"], "train_wall": train_wall,
            "evaluate_wall": time.time() - t1, "wall": time.time() - t0, "run_dir": str(run_dir)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="competition layout (labels.csv + trainval/)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--fastai-python", help="the Python of a virtualenv with fastai (skip fastai if absent)")
    ap.add_argument("--epochs", type=int, default=10, help="fastai's fit_one_cycle epochs (its docs: 10)")
    ap.add_argument("--batch", type=int, default=64, help="fastai's batch size (its default: 64)")
    ap.add_argument("--lowres", help="lowres config to train (skip lowres if absent)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the lowres config")
    ap.add_argument("--work", type=Path, default=Path("vs-fastai"), help="subset and runs go here")
    ap.add_argument("--out", type=Path, help="JSON with every figure")
    args = ap.parse_args(argv)

    subset = write_subset(args.data.resolve(), args.classes, (args.work / f"subset{args.classes}").resolve())
    figures = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "classes": args.classes, "fastai": [], "lowres": []}
    for seed in args.seeds:
        if args.fastai_python:
            figures["fastai"].append(run_fastai(args.fastai_python, subset, seed, args.epochs, args.batch))
            print(f"fastai seed {seed}: {figures['fastai'][-1]}", flush=True)
        if args.lowres:
            figures["lowres"].append(run_lowres(args.lowres, args.overrides, subset, seed,
                                                (args.work / "runs").resolve()))
            print(f"lowres seed {seed}: {figures['lowres'][-1]}", flush=True)
    print(f"\n{figures['machine']}; {args.classes} classes; val images: "
          f"{(figures['fastai'] or figures['lowres'])[0].get('val_images')}")
    print(f"{'who':<8}{'seed':>5}{'val acc':>9}{'with TTA':>10}{'wall s':>8}")
    for r in figures["fastai"]:
        print(f"{'fastai':<8}{r['seed']:>5}{100 * r['val_acc']:>8.1f}%"
              f"{100 * r['val_acc_tta']:>9.1f}%{r['wall']:>8.0f}")
    for r in figures["lowres"]:
        print(f"{'lowres':<8}{r['seed']:>5}{'':>9}{100 * r['val_acc']:>9.1f}%{r['wall']:>8.0f}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
