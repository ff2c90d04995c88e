"""Images/s of a full training step, augmentation included: lowres vs the seed's loop.

The baseline is a plain PyTorch loop written the way the seed wrote it: a Dataset that opens
each JPEG with PIL every epoch, torchvision per-image transforms (the seed's stage-2
pipeline: flip choice, RandAugment, ToTensor, RandomErasing, Normalize) in a DataLoader with
workers = cores, then forward, label-smoothed loss, backward, SGD step. lowres decodes once,
augments the batch on the device and runs the same model, batch, loss and optimizer. Both
run in the same process, on the same images, one after the other.

    python benchmarks/train_step.py                       # resnet8, resnet18, resnet50 on CPU
    python benchmarks/train_step.py --models resnet50 --batch 200 --steps 20 --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lowres.augment import build_pipeline
from lowres.config import SEED_STAGE2_AUGMENT, ModelConfig, OptimizerConfig, SchedulerConfig, \
    TrainConfig, DataConfig
from lowres.data.cache import decode_images
from lowres.data.loader import EpochLoader
from lowres.models import build_model
from lowres.train.device import resolve
from lowres.train.engine import Engine
from lowres.train.optim import build_optimizer
from lowres.train.schedules import Schedule

CLASSES = 200


def write_jpegs(directory: Path, n: int, size: int = 40) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        # Smooth random images compress like photos (noise would make JPEGs unusually big).
        small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((size, size), Image.BILINEAR)
        path = directory / f"img_{i:05d}.jpg"
        img.save(path, quality=75)
        paths.append(path)
    return paths


class SeedDataset(torch.utils.data.Dataset):
    """The seed's data path: open and decode the JPEG, then the per-image transforms."""

    def __init__(self, paths, labels, mean, std):
        from torchvision import transforms
        from torchvision.transforms import v2

        self.paths, self.labels = paths, labels
        self.transform = v2.Compose([
            v2.RandomChoice([v2.RandomHorizontalFlip(0.25), v2.RandomVerticalFlip(0.25)], p=[0.5, 0.5]),
            v2.RandAugment(),
            transforms.ToTensor(),
            v2.RandomErasing(ratio=(1.0, 1.0)),
            v2.Normalize(mean=mean, std=std),
        ])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            img = img.convert("RGB")
        return self.transform(img), self.labels[i]


def seed_loop(model, paths, labels, mean, std, batch, steps, warmup, device, workers) -> float:
    loader = torch.utils.data.DataLoader(
        SeedDataset(paths, labels, mean, std), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()
    it = iter(loader)
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def lowres_loop(model, images, labels, mean, std, batch, steps, warmup, device_name) -> float:
    train_cfg = TrainConfig(device=device_name, batch_size=batch)
    policy = resolve(train_cfg, DataConfig(), images.nbytes)
    engine = Engine(model, policy, label_smoothing=0.1)
    pipeline = build_pipeline(SEED_STAGE2_AUGMENT, mean, std, CLASSES)
    optimizer = build_optimizer(engine.module, OptimizerConfig())
    gen = torch.Generator(device=policy.device).manual_seed(0)
    warm = EpochLoader(images[: warmup * batch], labels[: warmup * batch], batch, policy.device,
                       policy.resident, seed=0)
    timed = EpochLoader(images[: steps * batch], labels[: steps * batch], batch, policy.device,
                        policy.resident, seed=0)
    schedule = Schedule(SchedulerConfig(name="constant"), 0.1, timed.steps_per_epoch, 1)
    engine.train_epoch(warm, 0, pipeline, optimizer, schedule, 0, gen)  # warm-up (and compile)
    progress = engine.train_epoch(timed, 1, pipeline, optimizer, schedule, 0, gen)
    return progress.seen / progress.seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="resnet8,resnet18,resnet50")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    device = torch.device(args.device)
    n = args.batch * (args.steps + args.warmup)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), n)
        labels = np.arange(n) % CLASSES
        images = decode_images(paths)
        mean = (images.reshape(n, 3, -1).mean(axis=(0, 2)) / 255).tolist()
        std = (images.reshape(n, 3, -1).std(axis=(0, 2)) / 255).tolist()
        hw = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        if device.type == "cuda":
            hw = torch.cuda.get_device_name(device)
        print(f"{hw}; 40x40, batch {args.batch}, {args.steps} timed steps after {args.warmup} "
              f"warm-up; seed stage-2 augmentation; baseline workers={args.workers}")
        print(f"{'model':<10} {'seed loop img/s':>16} {'lowres img/s':>14} {'ratio':>7}")
        for name in args.models.split(","):
            cfg = ModelConfig(name=name, stem="k4")
            torch.manual_seed(0)
            base = seed_loop(build_model(cfg, CLASSES).to(device), paths, labels.tolist(), mean,
                             std, args.batch, args.steps, args.warmup, device, args.workers)
            torch.manual_seed(0)
            ours = lowres_loop(build_model(cfg, CLASSES), images, labels, mean, std, args.batch,
                               args.steps, args.warmup, args.device)
            results.append({"model": name, "seed_loop": base, "lowres": ours, "ratio": ours / base})
            print(f"{name:<10} {base:>16.1f} {ours:>14.1f} {ours / base:>6.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"hardware": hw, "batch": args.batch,
                                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
