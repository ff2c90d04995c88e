"""Throughput of the seed's augmentation pipelines: lowres.augment (batched, on device)
vs torchvision per-image transforms on PIL images in a DataLoader.

    python benchmarks/augment.py [--batches 12] [--batch-size 256] [--device cpu|cuda|all]
                                 [--threads 1] [--repeats 2]

Both sides start from decoded images in memory (uint8 tensors for ours, PIL images for
torchvision), so neither pays for decoding; the seed also decoded a JPEG per image per
epoch in its workers, which made its real pipeline slower than the torchvision figure here.
Images are synthetic random 40x40 RGB. Prints images/s and the ratio per stage.
Ours runs in the main process with --threads torch threads (default 1: one core, while
torchvision gets a worker per core); each figure is the best of --repeats measurements,
which keeps it meaningful on a machine shared with other jobs.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from lowres.augment import build_pipeline

SEED_FLIP = {"op": "random_choice", "ops": [{"op": "hflip", "p": 0.25}, {"op": "vflip", "p": 0.25}]}
SEED_ERASING = {"op": "erasing", "p": 0.5, "scale": [0.02, 0.33], "ratio": [1.0, 1.0], "value": "zeros"}
STAGES = {
    "stage1": [SEED_FLIP, {"op": "grayscale", "p": 0.1},
               {"op": "gaussian_blur", "p": 1.0, "kernel_size": 3, "sigma": [0.1, 2.0]}, SEED_ERASING],
    "stage2": [SEED_FLIP, {"op": "randaugment", "num_ops": 2, "magnitude": 9, "num_magnitude_bins": 31},
               SEED_ERASING],
}
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
SIZE = 40


def torchvision_stage(stage: str) -> T.Compose:
    """The seed's per-image transforms (torchvision.transforms, PIL in, tensor out)."""
    flip = T.RandomChoice([T.RandomHorizontalFlip(0.25), T.RandomVerticalFlip(0.25)])
    middle = ([T.RandomGrayscale(0.1), T.GaussianBlur(kernel_size=3, sigma=(0.1, 2.0))]
              if stage == "stage1" else [T.RandAugment()])
    return T.Compose([flip, *middle, T.ToTensor(), T.RandomErasing(ratio=(1, 1)),
                      T.Normalize(MEAN, STD)])


class PilImages(Dataset):
    def __init__(self, images: np.ndarray, transform) -> None:
        self.images = [Image.fromarray(a) for a in images]  # decoded once, kept in memory
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), 0


def bench_torchvision(stage: str, images: np.ndarray, batch_size: int, workers: int) -> float:
    loader = DataLoader(PilImages(images, torchvision_stage(stage)), batch_size=batch_size,
                        num_workers=workers, shuffle=True, persistent_workers=workers > 0)
    batches = iter(loader)
    next(batches)  # worker start-up is not counted
    count, start = 0, time.perf_counter()
    for x, _ in batches:
        count += x.shape[0]
    return count / (time.perf_counter() - start)


def bench_ours(stage: str, images: np.ndarray, batch_size: int, device: str) -> float:
    pipe = build_pipeline(STAGES[stage], MEAN, STD, num_classes=10)
    data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
    labels = torch.zeros(len(data), dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    batches = [(data[i:i + batch_size], labels[i:i + batch_size])
               for i in range(0, len(data) - batch_size + 1, batch_size)]
    pipe(*batches[0], generator)  # warm-up
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for x, y in batches[1:]:
        pipe(x, y, generator)
    sync()
    return (len(batches) - 1) * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12, help="batches per measurement")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="all", help="cpu, cuda or all (cuda if available)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for ours on CPU")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workers = os.cpu_count() or 1
    n = args.batches * args.batch_size
    images = np.random.default_rng(0).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    print(f"{n} synthetic {SIZE}x{SIZE} RGB images, batch {args.batch_size}; "
          f"{workers} CPU cores; ours: {args.threads} torch thread(s); best of {args.repeats}")
    print(f"{'stage':<8} {'pipeline':<34} {'images/s':>10} {'ratio':>7}")
    for stage in STAGES:
        base = max(bench_torchvision(stage, images, args.batch_size, workers)
                   for _ in range(args.repeats))
        print(f"{stage:<8} {f'torchvision PIL, {workers} workers':<34} {base:>10.0f} {1.0:>7.1f}")
        for device in devices:
            ours = max(bench_ours(stage, images, args.batch_size, device)
                       for _ in range(args.repeats))
            print(f"{stage:<8} {f'lowres.augment batched ({device})':<34} {ours:>10.0f} "
                  f"{ours / base:>7.1f}")


if __name__ == "__main__":
    main()
