"""`lowres export`: ONNX and TorchScript files give PyTorch's probabilities on uint8 input."""
import json
import warnings

import numpy as np
import pytest
import torch

from run_configs import write_config
from lowres.cli import main
from lowres.data.cache import cached_images
from lowres.data.read import read_dataset
from lowres.predict.inference import load_probability_model
from lowres.train.loop import train


@pytest.fixture(scope="module")
def trained_run(tiny_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    cfg = write_config(tmp / "c.yaml", tiny_data, train={"device": "cpu"},
                       stages=[{"epochs": 1, "augment": []}])
    return train(cfg, run_dir=tmp / "run").run_dir


def _test_images(tiny_data):
    return np.array(cached_images(read_dataset(tiny_data).test.paths))  # a writable copy


def _reference(run, images):
    model, _ = load_probability_model(run, "best")
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


def test_torchscript_matches_pytorch(trained_run, tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    assert main(["export", str(trained_run), "--format", "torchscript", "--out", str(out)]) == 0
    images = _test_images(tiny_data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.10 deprecates TorchScript
        loaded = torch.jit.load(str(out))
    with torch.no_grad():
        got = loaded(torch.from_numpy(images)).numpy()
    ref = _reference(trained_run, images)
    diff = float(np.abs(got - ref).max())
    print(f"torchscript vs torch max abs diff {diff:.2e}")
    assert diff < 1e-4
    assert np.allclose(got.sum(axis=1), 1, atol=1e-5)
    info = json.loads(out.with_name("m.pt.json").read_text())
    assert info["class_names"] == ["0", "1", "2", "3"] and info["input"]["dtype"] == "uint8"


def test_onnx_matches_pytorch_in_onnxruntime(trained_run, tiny_data, tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    assert main(["export", str(trained_run), "--format", "onnx", "--out", str(out)]) == 0
    images = _test_images(tiny_data)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": images})[0]  # 12 images: the batch size is dynamic
    ref = _reference(trained_run, images)
    diff = float(np.abs(got - ref).max())
    print(f"onnx vs torch max abs diff {diff:.2e}")
    assert got.shape == (12, 4) and diff < 1e-4


def test_export_bad_run_is_one_line_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--format", "torchscript"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
