"""Throughput of the seed's augmentation pipelines: lowres.augment (batched, on device)
vs torchvision per-image transforms in a DataLoader.

    python benchmarks/augment.py [--batches 12] [--batch-size 256] [--device cpu|cuda|all]
                                 [--threads 1] [--repeats 3] [--json PATH]

Two torchvision baselines per stage, both with a DataLoader worker per core:
  * "JPEG decode + transforms" is the pipeline as the seed ran it: a Dataset reading one
    JPEG file per image (quality 75, written once to a temporary folder), PIL open +
    convert to RGB every epoch, then the per-image transforms. The primary baseline.
  * "in-memory PIL" starts from decoded PIL images, so it pays no decoding: a stricter
    baseline than anything the seed ran.
Ours starts from decoded uint8 tensors on the device (the training loop keeps the dataset
decoded in memory). Images are synthetic random 40x40 RGB. Ours runs in the main process
with --threads torch threads (default 1: one core, while torchvision gets a worker per
core). Each figure is the best of --repeats measurements, which keeps it meaningful on a
machine shared with other jobs. On CPU, lowres.augment tunes glibc malloc on its first
batch (see lowres/augment/cpu_memory.py; LOWRES_AUGMENT_MALLOC_TUNING=0 switches it off);
all torchvision baselines run before that happens.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from lowres.augment import build_pipeline
from lowres.augment import cpu_memory

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
    """Decoded once, kept in memory: no decoding cost at all (stricter than the seed)."""

    def __init__(self, images: np.ndarray, transform) -> None:
        self.images = [Image.fromarray(a) for a in images]  # decoded once, kept in memory
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), 0


class JpegFiles(Dataset):
    """The seed's dataset: one JPEG file per image, decoded on every access."""

    def __init__(self, paths: list[Path], transform) -> None:
        self.paths = paths
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB")), 0


def write_jpegs(images: np.ndarray, folder: Path) -> list[Path]:
    paths = []
    for i, array in enumerate(images):
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(array).save(path, quality=75)
        paths.append(path)
    return paths


def bench_loader(dataset: Dataset, batch_size: int, workers: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=True,
                        persistent_workers=workers > 0)
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
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workers = os.cpu_count() or 1
    n = args.batches * args.batch_size
    images = np.random.default_rng(0).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    print(f"{n} synthetic {SIZE}x{SIZE} RGB images, batch {args.batch_size}; "
          f"{workers} CPU cores; ours: {args.threads} torch thread(s); best of {args.repeats}")
    best = lambda fn: max(fn() for _ in range(args.repeats))  # noqa: E731
    baselines: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:  # all baselines first: see the docstring
        paths = write_jpegs(images, Path(folder))
        for stage in STAGES:
            transform = torchvision_stage(stage)
            baselines[stage] = {
                "jpeg": best(lambda t=transform: bench_loader(JpegFiles(paths, t), args.batch_size,
                                                              workers)),
                "pil": best(lambda t=transform: bench_loader(PilImages(images, t), args.batch_size,
                                                             workers)),
            }
    results = {"images": n, "size": SIZE, "batch_size": args.batch_size, "cpu_cores": workers,
               "threads": args.threads, "repeats": args.repeats, "stages": {}}
    print(f"{'stage':<8} {'pipeline':<50} {'images/s':>9} {'vs JPEG':>8} {'vs PIL':>7}")
    for stage in STAGES:
        jpeg, pil = baselines[stage]["jpeg"], baselines[stage]["pil"]
        rows = {f"torchvision JPEG decode + transforms, {workers} workers": jpeg,
                f"torchvision in-memory PIL, {workers} workers": pil}
        figures = {"torchvision_jpeg": jpeg, "torchvision_pil": pil}
        for device in devices:
            ours = best(lambda s=stage, d=device: bench_ours(s, images, args.batch_size, d))
            rows[f"lowres.augment batched ({device})"] = ours
            figures[f"ours_{device}"] = ours
            figures[f"ours_{device}_vs_jpeg"] = ours / jpeg
            figures[f"ours_{device}_vs_pil"] = ours / pil
        for name, value in rows.items():
            print(f"{stage:<8} {name:<50} {value:>9.0f} {value / jpeg:>8.1f} {value / pil:>7.1f}")
        results["stages"][stage] = figures
    results["malloc_tuned"] = cpu_memory.tuned()
    print(f"glibc malloc tuned for ours: {results['malloc_tuned']}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
