"""Any torch from 2.4 on: pyproject.toml bounds torch and torchvision from below only (pip
keeps the newer torch a platform already has), and a torch newer than the newest lowres was
tested with gives one warning line when training starts, once per process, and trains."""
import re
from pathlib import Path

import pytest
import torch

from run_configs import write_config
from lowres.basics import compat
from lowres.cli import main
from lowres.train.loop import train

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
NEWER = "lowres was tested with"
STAGE = [{"epochs": 1, "scheduler": {"name": "constant"}, "augment": []}]


def _requirement(name: str) -> str:
    deps = re.search(r"^dependencies = \[(.*?)^\]", PYPROJECT.read_text(), re.S | re.M).group(1)
    found = re.findall(rf'"({name}\b[^"]*)"', deps)
    assert len(found) == 1, found
    return found[0]


def test_torch_and_torchvision_have_no_upper_bound():
    assert _requirement("torch") == "torch>=2.4"
    assert _requirement("torchvision") == "torchvision>=0.19"


@pytest.mark.parametrize("version, warns", [
    ("2.16.0", True), ("3.0.0", True), ("2.16.0.dev20270101+cu130", True), ("2.16.0a0+git1234", True),
    (compat.NEWEST_TESTED_TORCH, False), (compat.NEWEST_TESTED_TORCH + "+cu132", False),
    ("2.14.1", False), ("2.4.1+cpu", False)])
def test_the_warning_is_for_a_newer_minor_version_only(monkeypatch, version, warns):
    monkeypatch.setattr(torch, "__version__", version)
    line = compat.newer_torch_warning()
    assert (line is not None) == warns
    if warns:
        assert line == (f"lowres: warning: torch {version} is newer than the newest torch lowres was "
                        f"tested with ({compat.NEWEST_TESTED_TORCH}); report problems with both "
                        f"versions")


def test_a_newer_torch_warns_once_per_process_and_trains(monkeypatch, tiny_data, tmp_path, capsys):
    monkeypatch.setattr(compat, "_warned_newer_torch", False)
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=STAGE)
    monkeypatch.setattr(torch, "__version__", compat.NEWEST_TESTED_TORCH + "+cu132")
    assert train(cfg, run_dir=tmp_path / "tested").state == "finished"
    assert NEWER not in capsys.readouterr().err  # the tested torch: silent
    monkeypatch.setattr(torch, "__version__", "2.16.0")
    assert train(cfg, run_dir=tmp_path / "newer").state == "finished"
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if NEWER in line]
    assert len(lines) == 1 and lines[0].startswith("lowres: warning: torch 2.16.0 is newer")
    # the same process again (a sweep's next point, a notebook's next cell): no repeat
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "again")]) == 0
    assert NEWER not in capsys.readouterr().err
