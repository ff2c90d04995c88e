"""Shared fixtures: small generated datasets (no downloads), an isolated image cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from lowres.data.synthetic import make_competition_dataset


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    os.environ["LOWRES_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["LOWRES_PROGRESS"] = "0"
    yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """4 classes x 24 images of 16x16 in the competition layout, 12 test images."""
    root = tmp_path_factory.mktemp("tiny") / "data"
    return make_competition_dataset(root, classes=4, per_class=24, test_per_class=3, size=16)


def write_config(path: Path, data_root: Path, **sections) -> Path:
    """A fast config: resnet8 at batch 16, one short stage, unless sections say otherwise."""
    cfg = {
        "seed": 0,
        "data": {"root": str(data_root), "val_fraction": 0.25},
        "model": {"name": "resnet8", "stem": "k3", "dropout": 0.1},
        "train": {"batch_size": 16, "eval_batch_size": 64},
        "stages": [{"epochs": 2, "scheduler": {"name": "cosine"},
                    "augment": [{"op": "hflip", "p": 0.5},
                                {"op": "erasing", "p": 0.5, "ratio": [1, 1]}]}],
        "track": {"plots": False, "report": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path
