"""`lowres stats DATA`: what a dataset holds, and its exact per-channel statistics."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from lowres.data.cache import cached_images, channel_stats
from lowres.data.read import read_dataset
from lowres.basics.intervals import split_precision_line


def dataset_stats(root: str | Path, cache_dir: str | None = None) -> dict:
    index = read_dataset(root)
    images = cached_images(index.labelled, cache_dir, desc="decoding labelled images")
    mean, std = channel_stats(images)
    counts = Counter(index.labelled.labels)
    return {
        "root": str(index.root), "layout": index.layout,
        "image_size": [int(images.shape[3]), int(images.shape[2])], "channels": int(images.shape[1]),
        "labelled_images": len(index.labelled), "test_images": len(index.test),
        "val_images": len(index.val) if index.val else 0,
        "classes": index.num_classes,
        "per_class": {index.class_names[c]: counts.get(c, 0) for c in range(index.num_classes)},
        "mean": mean, "std": std,
    }


SIZING_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2)


def stratified_val_count(per_class: list[int], fraction: float) -> int:
    """How many images data.prepare's stratified split takes at `fraction` (same rounding)."""
    return sum(min(n - 1, max(1, int(round(fraction * n)))) for n in per_class if n >= 2)


def print_stats(stats: dict, out=None) -> None:
    out = out or sys.stdout
    p = lambda text: print(text, file=out)  # noqa: E731
    w, h = stats["image_size"]
    p(f"dataset: {stats['root']} ({stats['layout']} layout)")
    p(f"images:  {stats['labelled_images']} labelled, {stats['test_images']} test"
      + (f", {stats['val_images']} val" if stats["val_images"] else "")
      + f"; {w}x{h}, {stats['channels']} channel(s)")
    counts = list(stats["per_class"].values())
    p(f"classes: {stats['classes']}; images per class min {min(counts)}, max {max(counts)}, "
      f"mean {sum(counts) / len(counts):.1f}")
    if len(counts) <= 30:
        for name, n in stats["per_class"].items():
            p(f"  {name}: {n}")
    p("validation split sizes (stratified, as data.val_fraction takes them) and the 95% "
      "interval of an accuracy measured on them:")
    if stats["val_images"]:
        p(f"  val/ folder: {split_precision_line(stats['val_images'])}")
    for fraction in SIZING_FRACTIONS:
        n = stratified_val_count(counts, fraction)
        if n:
            p(f"  data.val_fraction={fraction}: {split_precision_line(n)}")
    p("exact per-channel statistics over all pixels of the labelled images (0..1 units):")
    p("  mean " + " ".join(f"{m:.6f}" for m in stats["mean"]))
    p("  std  " + " ".join(f"{s:.6f}" for s in stats["std"]))
