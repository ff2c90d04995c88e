"""Generated datasets in the competition layout: the demo's data and the tests' data.

Each class is a kind of pattern (disc, ring, square, triangle, cross, stripes in three
directions, checkerboard, diamond, ...) drawn at a random place, size, rotation and colour
on a noisy random background, with a distractor blob and JPEG compression: a small net
learns it in a minute or two, but not perfectly.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from lowres.basics.progress import progress

PATTERNS = ["disc", "ring", "square", "triangle", "cross", "hstripes", "vstripes", "dstripes",
            "checker", "diamond", "frame", "dots"]


def _mask(kind: str, u: np.ndarray, v: np.ndarray, size: float, phase: float) -> np.ndarray:
    """A boolean mask of pattern `kind` in local, rotated coordinates (u, v) around the centre."""
    r = np.sqrt(u * u + v * v)
    if kind == "disc":
        return r < size
    if kind == "ring":
        return (r < size) & (r > 0.6 * size)
    if kind == "square":
        return (np.abs(u) < size * 0.85) & (np.abs(v) < size * 0.85)
    if kind == "triangle":
        return (v < size * 0.7) & (v > 1.7 * np.abs(u) - size)
    if kind == "cross":
        arm = size * 0.3
        return ((np.abs(u) < arm) & (np.abs(v) < size)) | ((np.abs(v) < arm) & (np.abs(u) < size))
    if kind == "diamond":
        return np.abs(u) + np.abs(v) < size
    if kind == "frame":
        inner = (np.abs(u) < size * 0.55) & (np.abs(v) < size * 0.55)
        return (np.abs(u) < size * 0.9) & (np.abs(v) < size * 0.9) & ~inner
    period = max(4.0, size * 0.6)  # wide enough to survive a blur of the seed's sigma
    inside = r < size * 1.25
    if kind == "hstripes":
        return inside & (np.mod(v + phase, period) < period / 2)
    if kind == "vstripes":
        return inside & (np.mod(u + phase, period) < period / 2)
    if kind == "dstripes":
        return inside & (np.mod(u + v + phase, period * 1.4) < period * 0.7)
    if kind == "checker":
        return inside & ((np.floor((u + phase) / period) + np.floor((v + phase) / period)) % 2 == 0)
    if kind == "dots":
        return inside & (np.mod(u + phase, period) < period * 0.45) & \
            (np.mod(v + phase, period) < period * 0.45)
    raise ValueError(kind)


def render(kind: str, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """One HxWx3 uint8 image of pattern `kind`."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # Background: a random colour gradient plus noise.
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = ((xx * np.cos(angle) + yy * np.sin(angle)) / size + 1) / 2
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    # A distractor blob that carries no class information.
    bx, by, br = rng.uniform(0, size, 2).tolist() + [rng.uniform(2, size / 8)]
    blob = (xx - bx) ** 2 + (yy - by) ** 2 < br ** 2
    img[blob] = rng.uniform(0, 255, 3)
    # The pattern, in a colour that differs from the background enough to be seen.
    cx, cy = rng.uniform(size * 0.3, size * 0.7, 2)
    scale = rng.uniform(size * 0.22, size * 0.36)
    theta = rng.uniform(0, 2 * np.pi) if kind not in ("hstripes", "vstripes", "dstripes") \
        else rng.uniform(-0.25, 0.25)
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    mask = _mask(kind, u, v, scale, rng.uniform(0, 10))
    colour = rng.uniform(0, 255, 3)
    while np.abs(colour - img[int(cy), int(cx)]).sum() < 120:
        colour = rng.uniform(0, 255, 3)
    img[mask] = colour
    img += rng.normal(0, rng.uniform(3, 15), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_competition_dataset(root: str | Path, classes: int = 10, per_class: int = 200,
                             test_per_class: int = 40, size: int = 40, seed: int = 0,
                             grayscale: bool = False, quality: int = 85) -> Path:
    """Write labels.csv, classes.csv, trainval/, test/ (and test_labels.csv, the "private
    leaderboard" answers) under `root`. Deterministic for a given seed."""
    if classes > len(PATTERNS):
        raise ValueError(f"at most {len(PATTERNS)} synthetic classes")
    root = Path(root)
    (root / "trainval").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    train_labels = rng.permutation(np.repeat(np.arange(classes), per_class))
    test_labels = rng.permutation(np.repeat(np.arange(classes), test_per_class))
    jobs = [("trainval", i, int(c)) for i, c in enumerate(train_labels)] + \
           [("test", i, int(c)) for i, c in enumerate(test_labels)]
    for split, i, c in progress(jobs, total=len(jobs), desc="generating demo images", unit="img"):
        arr = render(PATTERNS[c], rng, size)
        img = Image.fromarray(arr).convert("L") if grayscale else Image.fromarray(arr)
        img.save(root / split / f"{split}_{i:05d}.jpg", quality=quality)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Id", "Category"])
        w.writerows((f"trainval_{i:05d}.jpg", int(c)) for i, c in enumerate(train_labels))
    with open(root / "test_labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Id", "Category"])
        w.writerows((f"test_{i:05d}.jpg", int(c)) for i, c in enumerate(test_labels))
    with open(root / "classes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Category", "name"])
        w.writerows((c, PATTERNS[c]) for c in range(classes))
    return root


def score_submission(submission: str | Path, answers: str | Path) -> float:
    """Accuracy of a submission CSV against an answers CSV (both Id,Category)."""
    def read(path):
        with open(path, newline="") as f:
            return {row["Id"]: row["Category"] for row in csv.DictReader(f)}
    sub, ans = read(submission), read(answers)
    return sum(sub.get(k) == v for k, v in ans.items()) / max(len(ans), 1)
