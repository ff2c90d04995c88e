import numpy as np
import torch

from lowres.config import DataConfig
from lowres.data.cache import cached_images, channel_stats, file_list_key
from lowres.data.loader import EpochLoader
from lowres.data.prepare import prepare, select, stratified_split
from lowres.data.read import read_dataset


def test_cache_is_reused_and_invalidated_by_a_changed_file_list(tiny_data, tmp_path):
    paths = read_dataset(tiny_data).labelled.paths
    first = cached_images(paths, tmp_path)
    assert isinstance(first, np.memmap) is False or first.dtype == np.uint8
    assert len(list(tmp_path.glob("*.npy"))) == 1
    again = cached_images(paths, tmp_path)
    assert isinstance(again, np.memmap)  # served from the cache, memory-mapped
    np.testing.assert_array_equal(first, again)
    assert file_list_key(paths[:-1]) != file_list_key(paths)
    cached_images(paths[:-1], tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_channel_stats_are_exact_over_all_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(37, 3, 5, 7), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=4)
    x = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), atol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3)), atol=1e-9)


def test_stratified_split_is_per_class_and_seeded():
    labels = np.repeat(np.arange(5), 100)
    tr, va = stratified_split(labels, 0.01, seed=3)
    assert len(va) == 5 and sorted(labels[va].tolist()) == [0, 1, 2, 3, 4]
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 500
    tr2, va2 = stratified_split(labels, 0.01, seed=3)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(labels, 0.01, seed=4)[1])


def test_select_first_classes_and_per_class():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(select(labels, 2, None), [0, 1, 3, 4, 6, 7])
    np.testing.assert_array_equal(select(labels, None, 1), [0, 1, 2])


def test_prepare_applies_subset_split_and_stats(tiny_data):
    data = prepare(DataConfig(root=str(tiny_data), classes=3, per_class=10, val_fraction=0.2), 0)
    assert data.num_classes == 3 and data.class_names == ["0", "1", "2"]
    assert len(data.train_labels) == 24 and len(data.val_labels) == 6
    assert set(data.train_labels.tolist()) == {0, 1, 2}
    assert data.train_images.shape[1:] == (3, 16, 16) and len(data.mean) == 3


def test_loader_order_is_seeded_sharded_and_resumable():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(2, axis=2)
    labels = np.arange(10)
    single = EpochLoader(images, labels, 4, torch.device("cpu"), True, seed=1)
    batches = [y.tolist() for _, y in single.batches(epoch=2)]
    assert single.steps_per_epoch == 2 and all(len(b) == 4 for b in batches)
    assert len(set(sum(batches, []))) == 8  # full batches only; each image at most once
    assert batches[1:] == [y.tolist() for _, y in single.batches(epoch=2, start_step=1)]
    assert batches != [y.tolist() for _, y in single.batches(epoch=3)]
    ranks = [EpochLoader(images, labels, 4, torch.device("cpu"), True, seed=1, rank=r, world_size=2)
             for r in range(2)]
    for step, parts in enumerate(zip(*(r.batches(epoch=2) for r in ranks))):
        assert sorted(parts[0][1].tolist() + parts[1][1].tolist()) == sorted(batches[step])


def test_loader_yields_full_batches_only():
    """One batch shape per run: a compiled model never recompiles for a short last batch."""
    images = np.zeros((11, 1, 2, 2), np.uint8)
    loader = EpochLoader(images, np.zeros(11, np.int64), 4, torch.device("cpu"), True, seed=0)
    assert [len(y) for _, y in loader.batches(0)] == [4, 4]
    left_out = [set(range(11)) - set(loader.permutation(e)[:8].tolist()) for e in range(6)]
    assert len(set().union(*left_out)) > 6  # other images are left out in other epochs
    small = EpochLoader(images[:3], np.zeros(3, np.int64), 4, torch.device("cpu"), True, seed=0)
    assert [len(y) for _, y in small.batches(0)] == [3]  # smaller than a batch: one batch


def test_host_gathered_loader_gives_the_resident_batches():
    """data.resident=no on the CPU takes the accelerator's host-gather path."""
    images = np.random.default_rng(0).integers(0, 255, (12, 3, 2, 2), dtype=np.uint8)
    labels = np.arange(12)
    resident = EpochLoader(images, labels, 4, torch.device("cpu"), True, seed=3)
    gathered = EpochLoader(images, labels, 4, torch.device("cpu"), False, seed=3)
    assert not gathered.resident
    for (xa, ya), (xb, yb) in zip(resident.batches(1), gathered.batches(1)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
