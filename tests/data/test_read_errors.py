"""Every kind of bad input gets one line naming the file/row and the fix."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lowres.data.cache import decode_images
from lowres.data.read import read_dataset
from lowres.errors import DataError


def make(root: Path, n=6, classes=2, size=8, labels=None):
    (root / "trainval").mkdir(parents=True)
    rows = ["Id,Category"]
    for i in range(n):
        name = f"trainval_{i:05d}.jpg"
        Image.fromarray(np.full((size, size, 3), i * 20, np.uint8)).save(root / "trainval" / name)
        rows.append(f"{name},{labels[i] if labels else i % classes}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_good_competition_layout(tmp_path):
    index = read_dataset(make(tmp_path / "d"))
    assert index.layout == "competition" and index.class_names == ["0", "1"]
    assert len(index.labelled) == 6 and index.labelled.labels[:2] == [0, 1]


def test_categories_keep_their_spelling(tmp_path):
    index = read_dataset(make(tmp_path / "d", labels=[3, 7, 3, 7, 3, 7]))
    assert index.class_names == ["3", "7"] and index.labelled.labels[:2] == [0, 1]


@pytest.mark.parametrize("mutate, pattern", [
    (lambda r: (r / "labels.csv").unlink(), r"labels.csv is missing"),
    (lambda r: (r / "labels.csv").write_text("Name,Category\na.jpg,1\n"), r"column Id is missing"),
    (lambda r: (r / "labels.csv").write_text("Id,Label\na.jpg,1\n"), r"column Category is missing"),
    (lambda r: (r / "trainval" / "trainval_00002.jpg").unlink(),
     r"line 4: image 'trainval_00002.jpg' is missing"),
    (lambda r: _append(r, "trainval_00001.jpg,cat"), r"Category 'cat'.*not an integer"),
    (lambda r: _replace(r, "trainval_00001.jpg,1", "trainval_00001.jpg,-1"), r"-1.*negative"),
    (lambda r: _append(r, "trainval_00001.jpg,1"), r"duplicate Id 'trainval_00001.jpg'"),
    (lambda r: (r / "classes.csv").write_text("Category,name\n0,a\n1,b\n2,c\n"),
     r"class 2 .*has no images"),
    (lambda r: (r / "labels.csv").write_text("Id,Category\n"), r"lists no images"),
    (lambda r: (r / "labels.csv").write_text(""), r"is empty"),
])
def test_bad_listing(tmp_path, mutate, pattern):
    root = make(tmp_path / "d")
    mutate(root)
    with pytest.raises(DataError, match=pattern):
        read_dataset(root)


def _append(root, line):
    with open(root / "labels.csv", "a") as f:
        f.write(line + "\n")


def _replace(root, old, new):
    p = root / "labels.csv"
    p.write_text(p.read_text().replace(old, new))


def test_missing_and_empty_directories(tmp_path):
    with pytest.raises(DataError, match="dataset not found"):
        read_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no dataset layout found"):
        read_dataset(tmp_path / "empty")
    (tmp_path / "folders" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no class folders"):
        read_dataset(tmp_path / "folders")
    (tmp_path / "folders" / "train" / "cat").mkdir()
    with pytest.raises(DataError, match=r"class folder .*cat has no images"):
        read_dataset(tmp_path / "folders")


def test_class_folders_layout(tmp_path):
    for cls in ("dog", "cat"):
        d = tmp_path / "f" / "train" / cls
        d.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / f"{i}.png")
    (tmp_path / "f" / "test").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "f" / "test" / "b.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "f" / "test" / "a.png")
    index = read_dataset(tmp_path / "f")
    assert index.layout == "folders" and index.class_names == ["cat", "dog"]
    assert [p.name for p in index.test.paths] == ["a.png", "b.png"]
    images = decode_images(index.labelled.paths)
    assert images.shape == (6, 1, 8, 8)  # grayscale stays one channel


def test_truncated_and_unreadable_images(tmp_path):
    root = make(tmp_path / "d")
    bad = root / "trainval" / "trainval_00003.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    paths = read_dataset(root).labelled.paths
    with pytest.raises(DataError, match=r"trainval_00003.jpg: cannot decode image"):
        decode_images(paths)
    bad.write_text("not an image at all")
    with pytest.raises(DataError, match=r"trainval_00003.jpg: cannot decode image"):
        decode_images(paths)


def test_mixed_sizes(tmp_path):
    root = make(tmp_path / "d")
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(root / "trainval" / "trainval_00004.jpg")
    with pytest.raises(DataError, match=r"trainval_00004.jpg is 10x12 .* 8x8.*one size"):
        decode_images(read_dataset(root).labelled.paths)


def test_mixed_gray_and_rgb_become_rgb(tmp_path):
    root = make(tmp_path / "d")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(root / "trainval" / "trainval_00001.jpg")
    images = decode_images(read_dataset(root).labelled.paths)
    assert images.shape == (6, 3, 8, 8)
    assert np.all(np.abs(images[1].astype(int) - 200) <= 2)


def test_cli_reports_one_line_and_exit_code_2(tmp_path):
    root = make(tmp_path / "d")
    _append(root, "trainval_00001.jpg,x")
    proc = subprocess.run([sys.executable, "-m", "lowres", "stats", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 8" in lines[0] and "Traceback" not in proc.stderr
