"""Shared fixtures: small generated datasets (no downloads), an isolated image cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
