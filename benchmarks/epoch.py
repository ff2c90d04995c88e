"""Seconds per epoch of the seed's stage-2 plan on tiny40, through `lowres train` itself.

Stage 2 of configs/seed/final.yaml (ResNet50 k4 stem, batch 200, flip + RandAugment +
erasing, SGD) for one epoch on the 99,000 training images of tiny40. On a GPU the epoch runs
whole; on a CPU (hours per epoch) it is cut after --steps steps and the epoch time is
extrapolated from the measured steps (training only; evaluation of the 1,000 val images
is timed separately and added). A whole epoch on a GPU runs twice and reports the second:
the first pays torch.compile and cuDNN autotuning, reported apart as the warm-up cost.

    python benchmarks/epoch.py                        # unpacks ../shared/datasets/tiny40 if needed
    python benchmarks/epoch.py --data DATA --device cuda --steps 0   # a full epoch
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lowres import config as config_mod  # noqa: E402
from lowres.run.log import read_metrics  # noqa: E402
from lowres.run import checkpoint  # noqa: E402
from lowres.train.loop import train  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets" / "tiny40"


def ensure_tiny40(data: str | None) -> Path:
    if data:
        return Path(data)
    target = Path(os.environ.get("LOWRES_DATA_DIR", Path.home() / ".cache" / "lowres-data")) / "tiny40"
    if not (target / "labels.csv").exists():
        if not SHARED.exists():
            raise SystemExit("tiny40 not found: pass --data DIR (unpacked competition layout)")
        print(f"unpacking {SHARED} into {target} (once)", flush=True)
        target.mkdir(parents=True, exist_ok=True)
        for name in ("trainval.tar.gz", "test.tar.gz"):
            with tarfile.open(SHARED / name) as tar:
                tar.extractall(target, filter="data")
        for name in ("labels.csv", "classes.csv"):
            (target / name).write_bytes((SHARED / name).read_bytes())
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="tiny40 in the competition layout (default: unpack the shared copy)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="resnet50", help="model name (default: the seed's resnet50)")
    ap.add_argument("--steps", type=int, default=None,
                    help="cut the epoch after this many steps and extrapolate (0 = full epoch; "
                         "default: full on CUDA, 4 on CPU)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    data = ensure_tiny40(args.data)
    final = config_mod.to_dict(config_mod.load(ROOT / "configs" / "seed" / "final.yaml",
                                               [f"data.root={data}"]))
    import torch

    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    steps = args.steps if args.steps is not None else (0 if cuda else 4)
    # A whole epoch: run two, report the second (the first compiles and autotunes).
    stage2 = dict(final["stages"][1], epochs=1 if steps else 2,
                  stop={"after_lr_drop": None, "patience": None})
    final["stages"] = [stage2]
    final["model"]["name"] = args.model
    final["train"]["device"] = args.device
    final["track"] = {"plots": False, "report": False, "tensorboard": False}
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "stage2.yaml"
        cfg_path.write_text(yaml.safe_dump(final, sort_keys=False))
        start = time.perf_counter()
        result = train(cfg_path, run_dir=Path(tmp) / "run", pause_after_steps=steps or None)
        wall = time.perf_counter() - start
        if result.state == "finished":
            rows = read_metrics(result.run_dir)
            row = rows[-1]
            epoch_s, img_s = float(row["seconds"]), float(row["images_per_s"])
            measured = (f"measured, second of two epochs; the first took "
                        f"{float(rows[0]['seconds']):.1f} s with compilation and autotuning")
        else:
            state = checkpoint.load(result.run_dir / "checkpoints" / "last.pt")
            part = state["partial"]
            total_steps = 99_000 // final["train"]["batch_size"]  # full batches only
            epoch_s = part["seconds"] / part["step"] * total_steps
            img_s = part["seen"] / part["seconds"]
            measured = f"extrapolated from {part['step']} steps"
    hw = torch.cuda.get_device_name() if cuda else f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"{hw}: stage-2 epoch of the seed's plan ({args.model}, batch "
          f"{final['train']['batch_size']}): {epoch_s:.1f} s ({measured}), {img_s:.1f} train img/s; "
          f"wall time of this benchmark {wall:.0f} s (data decode/cache, model build included)")
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": hw, "model": args.model,
                                               "epoch_seconds": epoch_s, "how": measured,
                                               "train_images_per_s": img_s}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
