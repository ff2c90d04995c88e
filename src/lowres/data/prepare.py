"""From a `data` config to arrays ready to train on: subset, stratified split, statistics.

The decoded cache always holds the whole labelled list; `data.classes` / `data.per_class`
and the validation split select indices into it, so quick experiments reuse the cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowres.config import DataConfig
from lowres.data.cache import cached_images, channel_stats
from lowres.data.read import DatasetIndex, read_dataset, read_labelled_folder
from lowres.errors import DataError


@dataclass
class Prepared:
    index: DatasetIndex
    class_names: list[str]  # after data.classes
    train_images: np.ndarray  # uint8 [N, C, H, W]
    train_labels: np.ndarray  # int64 [N]
    val_images: np.ndarray
    val_labels: np.ndarray
    mean: list[float]  # per channel, 0..1 units, over the training images
    std: list[float]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


def select(labels: np.ndarray, classes: int | None, per_class: int | None) -> np.ndarray:
    """Indices of the first `classes` classes, at most `per_class` images each (file order)."""
    keep = np.arange(len(labels))
    if classes is not None:
        keep = keep[labels[keep] < classes]
    if per_class is not None:
        counts: dict[int, int] = {}
        chosen = []
        for i in keep:
            c = int(labels[i])
            if counts.get(c, 0) < per_class:
                counts[c] = counts.get(c, 0) + 1
                chosen.append(i)
        keep = np.asarray(chosen, dtype=np.int64)
    return keep


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) positions into `labels`: `fraction` of each class (at least one image of
    every class with two or more), chosen by a generator seeded with `seed`."""
    if fraction <= 0:
        return np.arange(len(labels)), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        take = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        val.append(rng.permutation(members)[:take])
    val_idx = np.sort(np.concatenate(val)) if val else np.empty(0, dtype=np.int64)
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask), val_idx


def prepare(cfg: DataConfig, seed: int) -> Prepared:
    if not Path(cfg.root).expanduser().exists():
        raise DataError(f"data.root={cfg.root}: directory not found (set data.root=PATH to a "
                        f"dataset: labels.csv + trainval/, or train/<class>/ folders)")
    index = read_dataset(cfg.root, cfg.image_column, cfg.label_column)
    labels = np.asarray(index.labelled.labels, dtype=np.int64)
    class_names = index.class_names
    if cfg.classes is not None:
        if cfg.classes > index.num_classes:
            raise DataError(f"data.classes={cfg.classes} but {cfg.root} has only "
                            f"{index.num_classes} classes (lower data.classes)")
        class_names = class_names[: cfg.classes]
    keep = select(labels, cfg.classes, cfg.per_class)
    images = cached_images(index.labelled, cfg.cache_dir, desc="decoding labelled images", size=cfg.size)
    # Validation: an explicit folder (data.val_dir), else the dataset's own val/, else a
    # stratified split of the labelled images.
    val_split = (read_labelled_folder(cfg.val_dir, class_names, cfg.image_column, cfg.label_column)
                 if cfg.val_dir else index.val)
    if val_split is not None and len(val_split):
        val_images = np.asarray(cached_images(val_split, cfg.cache_dir, desc="decoding val images",
                                              size=cfg.size))
        val_labels = np.asarray(val_split.labels, dtype=np.int64)
        in_classes = select(val_labels, cfg.classes, None)
        val_images, val_labels = val_images[in_classes], val_labels[in_classes]
        train_idx = keep
    else:
        tr, va = stratified_split(labels[keep], cfg.val_fraction, seed)
        train_idx, val_idx = keep[tr], keep[va]
        val_images = np.asarray(images[val_idx])
        val_labels = labels[val_idx]
    if len(train_idx) == 0:
        raise DataError(f"{cfg.root}: no training images left after data.classes/per_class and "
                        f"the validation split (lower data.val_fraction)")
    train_images = np.asarray(images[train_idx])
    if val_images.shape[1:] != train_images.shape[1:] and len(val_images):
        raise DataError(f"validation images are {val_images.shape[3]}x{val_images.shape[2]} but "
                        f"training images are {train_images.shape[3]}x{train_images.shape[2]}")
    mean, std = channel_stats(train_images)
    return Prepared(index, list(class_names), train_images, labels[train_idx], val_images,
                    val_labels, mean, std)


def test_images(index: DatasetIndex, cache_dir: str | None,
                size: int | None = None) -> tuple[np.ndarray, list[str]]:
    """The unlabelled test images (file-name order) and their Ids (file names; for tables
    an id column, the stored file names or row numbers)."""
    if index.test_labelled:
        raise DataError(f"{index.root}: the test split is labelled, so it is for scoring, not "
                        f"for a submission: run `lowres evaluate RUN --data {index.root}`")
    if not index.test.paths:
        where = "a test split" if index.layout == "table" else "the test images in DATA/test/"
        raise DataError(f"{Path(index.root) / 'test'} has no images: predict needs {where}")
    ids = index.test.ids or [p.name for p in index.test.paths]
    return (np.asarray(cached_images(index.test, cache_dir, desc="decoding test images", size=size)), ids)


def labelled_test(index: DatasetIndex, cache_dir: str | None, size: int | None = None,
                  classes: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The labelled test split (test/<class>/ folders, a labelled test table) restricted to
    the first `classes` classes (data.classes), or None."""
    if not index.test_labelled or not len(index.test):
        return None
    images = cached_images(index.test, cache_dir, desc="decoding test images", size=size)
    labels = np.asarray(index.test.labels, dtype=np.int64)
    keep = select(labels, classes, None)
    return np.asarray(images[keep]), labels[keep]
