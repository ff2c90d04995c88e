"""The table layout (Hugging Face save_to_disk, Hub-style parquet), labelled test folders,
and data.size: read, cached, trained on, predicted, evaluated."""
import io
import numpy as np
import pytest
import torch
from PIL import Image

import lowres
from lowres.data.cache import cached_images
from lowres.data.prepare import test_images as submission_images  # not a test function
from lowres.data.read import read_dataset
from lowres.errors import DataError

NAMES = ["cat", "dog", "fox"]


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def images(n, seed, size=12):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def fast_config(root, **data):
    return {"seed": 0, "data": {"root": str(root), "val_fraction": 0.2, **data},
            "model": {"name": "resnet8", "stem": "k3", "dropout": 0.0},
            "train": {"batch_size": 8, "eval_batch_size": 32, "device": "cpu"},
            "stages": [{"epochs": 1, "scheduler": {"name": "constant"}, "augment": []}],
            "track": {"plots": False, "report": False}}


@pytest.fixture(scope="module")
def hf_dataset(tmp_path_factory):
    """A DatasetDict saved to disk: ClassLabel names, an unlabelled test split (label -1)."""
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=NAMES)})
    train_arrays, test_arrays = images(18, 0), images(4, 1)
    train = datasets.Dataset.from_dict(
        {"image": [{"bytes": png(a), "path": None} for a in train_arrays],
         "label": [i % 3 for i in range(18)]}, features=features)
    test = datasets.Dataset.from_dict(
        {"image": [{"bytes": png(a), "path": f"t{i}.png"} for i, a in enumerate(test_arrays)],
         "label": [-1] * 4}, features=features)
    root = tmp_path_factory.mktemp("hf") / "saved"
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(root))
    return root, train_arrays, test_arrays


def test_saved_hf_dataset_reads_names_labels_and_pixels(hf_dataset):
    root, train_arrays, _ = hf_dataset
    index = read_dataset(root)
    assert index.layout == "table" and index.class_names == NAMES
    assert index.labelled.labels == [i % 3 for i in range(18)] and not index.test_labelled
    decoded = cached_images(index.labelled)
    assert decoded.shape == (18, 3, 12, 12)
    assert np.array_equal(decoded[5], train_arrays[5].transpose(2, 0, 1))
    arr, ids = submission_images(index, None)
    assert ids == ["t0.png", "t1.png", "t2.png", "t3.png"] and arr.shape == (4, 3, 12, 12)


def test_hf_dataset_trains_and_predicts_class_names(hf_dataset, tmp_path):
    root, _, _ = hf_dataset
    run = lowres.train(fast_config(root), run_dir=tmp_path / "run")
    sub = lowres.predict(run, root)
    assert list(sub["Id"]) == ["t0.png", "t1.png", "t2.png", "t3.png"]
    assert set(sub["Category"]) <= set(NAMES)


def test_hub_parquet_layout_with_named_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True)
    arrays = images(6, 2)
    cells = [{"bytes": png(a), "path": f"img{i}.png"} for i, a in enumerate(arrays)]
    pq.write_table(pa.table({"picture": cells, "species": ["b", "a", "b", "a", "b", "a"]}),
                   root / "data" / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"picture": cells[:2], "species": ["a", "b"]}),
                   root / "data" / "test-00000-of-00001.parquet")
    with pytest.raises(DataError, match="no label column found .*data.label_column=NAME"):
        read_dataset(root, image_column="picture")
    index = read_dataset(root, image_column="picture", label_column="species")
    assert index.class_names == ["a", "b"] and index.labelled.labels == [1, 0, 1, 0, 1, 0]
    assert index.test_labelled and index.test.labels == [0, 1]  # a labelled test: for evaluate
    assert np.array_equal(cached_images(index.test)[1], arrays[1].transpose(2, 0, 1))
    with pytest.raises(DataError, match="test split is labelled.*lowres evaluate"):
        submission_images(index, None)


def test_labelled_test_folders_are_what_evaluate_scores(tmp_path):
    root = tmp_path / "folders"
    arrays = images(16, 3)
    for split, count in (("train", 6), ("test", 2)):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(arrays[i + (8 if c == "b" else 0)]).save(root / split / c / f"{i}.png")
    index = read_dataset(root)
    assert index.test_labelled and index.test.labels == [0, 0, 1, 1]
    run = lowres.train(fast_config(root), run_dir=tmp_path / "run")
    result = lowres.evaluate(run)
    assert result["source"] == "the dataset's labelled test split" and result["images"] == 4


def test_mixed_sizes_name_data_size_and_data_size_resizes(tmp_path):
    root = tmp_path / "photos"
    for c, shape in (("a", (20, 30)), ("b", (30, 24))):
        (root / "train" / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((*shape, 3), 40 * i, np.uint8)).save(root / "train" / c / f"{i}.png")
    with pytest.raises(DataError, match="set data.size=N to resize and centre-crop"):
        lowres.train(fast_config(root), run_dir=tmp_path / "r1")
    run = lowres.train(fast_config(root, size=16), run_dir=tmp_path / "r2")
    assert run.model()(torch.zeros(1, 3, 16, 16, dtype=torch.uint8)).shape == (1, 2)
    index = read_dataset(root)
    resized = cached_images(index.labelled, size=16)
    assert resized.shape == (10, 3, 16, 16) and resized[3].min() == resized[3].max() == 120
