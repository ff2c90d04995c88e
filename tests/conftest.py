"""Shared fixtures: small generated datasets (no downloads), an isolated image cache, and
the CPU for every test that is not marked `cuda`, so the suite behaves the same on a CPU
machine and on a GPU machine (bitwise-resume tests need the CPU's determinism, and a
2-process test must not ask a 1-GPU machine for cuda:1)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lowres.data.synthetic import make_competition_dataset
from ray_cluster import two_nodes, two_nodes_for_module  # noqa: F401 (fixtures of the --ray tests)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    os.environ["LOWRES_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["LOWRES_PROGRESS"] = "0"
    yield


@pytest.fixture(autouse=True)
def _cpu_unless_marked_cuda(request, monkeypatch):
    if request.node.get_closest_marker("cuda"):
        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")
        return
    # "auto" resolves to the CPU in this process. (Processes a test starts get configs
    # from run_configs.write_config, which pins train.device=cpu; hiding GPUs through
    # CUDA_VISIBLE_DEVICES here would hide them from the cuda tests of this process too.)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # ...and no device node either: on a GPU machine /dev/nvidia0 exists, and train.device=auto
    # would warn that CUDA is unusable (train/device.py) in every test's output.
    monkeypatch.setattr("lowres.train.device.NVIDIA_DEVICE_NODES", ())


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """4 classes x 24 images of 16x16 in the competition layout, 12 test images."""
    root = tmp_path_factory.mktemp("tiny") / "data"
    return make_competition_dataset(root, classes=4, per_class=24, test_per_class=3, size=16)
