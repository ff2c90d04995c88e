"""`lowres sweep --parallel N`: points in processes of their own, several at a time; the
same numbers as one after another; a Ctrl-C saves every running point and the same command
resumes them."""
import signal
import subprocess
import sys
import time

import pytest

from run_configs import write_config
from lowres.cli import main
from lowres.errors import ConfigError
from lowres.sweep.parallel import slots
from lowres.run.read import run_state
from lowres.run.log import read_metrics

TIMING = {"images_per_s", "seconds", "elapsed"}


def numbers(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_metrics(run_dir)]


def sweep(cfg, out, *extra):
    return [*map(str, ["sweep", cfg, "--grid", "model.dropout=0.0,0.2", "--seeds", "0,1",
                       "--out", out, "train.threads=1", *extra])]


def test_parallel_points_equal_sequential_ones(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 2, "augment": []}])
    assert main(sweep(cfg, tmp_path / "seq")) == 0
    assert main(sweep(cfg, tmp_path / "par", "--parallel", "2")) == 0
    out = capsys.readouterr().out
    assert out.count("running on 1 thread(s)") == 4 and "4/4 done" in out
    names = sorted(p.name for p in (tmp_path / "seq").iterdir() if (p / "config.yaml").exists())
    assert len(names) == 4
    for name in names:
        assert run_state(tmp_path / "par" / name) == "finished"
        assert numbers(tmp_path / "par" / name) == numbers(tmp_path / "seq" / name), name
        log = (tmp_path / "par" / "logs" / f"{name}.log").read_text().splitlines()
        assert sum(line.startswith("epoch ") for line in log) == 2  # each point's own log
    assert (tmp_path / "par" / "comparison" / "report.html").is_file()


def test_ctrl_c_saves_every_running_point_and_the_same_command_resumes(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 30, "augment": []}])
    args = ["sweep", str(cfg), "--grid", "model.dropout=0.0,0.2", "--out", str(tmp_path / "par"),
            "train.threads=1", "--parallel", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "lowres", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    runs = [tmp_path / "par" / name for name in ("dropout0.0", "dropout0.2")]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(len(read_metrics(r)) >= 2 for r in runs):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert out.count("saved and stopped") == 2 and "rerun the same command" in out
    cut = [len(read_metrics(r)) for r in runs]
    assert all(run_state(r) == "stopped (resumable)" for r in runs) and all(c < 30 for c in cut)
    assert main(args) == 0  # the same command: both resume and finish
    assert main(["sweep", str(cfg), "--grid", "model.dropout=0.0,0.2", "--out", str(tmp_path / "seq"),
                 "train.threads=1"]) == 0
    for run in runs:
        assert numbers(run) == numbers(tmp_path / "seq" / run.name)  # as if never stopped


def test_slots(monkeypatch):
    import torch

    assert slots(3, 1) == [{}, {}, {}]  # a CPU machine: processes share the cores
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert slots(None, 1) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert [s["CUDA_VISIBLE_DEVICES"] for s in slots(None, 2)] == ["0", "0", "1", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert [s["CUDA_VISIBLE_DEVICES"] for s in slots(2, 1)] == ["3", "5"]
    with pytest.raises(ConfigError, match="--parallel 5 but 2 GPU"):
        slots(5, 2)
    with pytest.raises(ConfigError, match="--per-gpu 0"):
        slots(None, 0)


def test_a_bad_point_fails_before_anything_starts(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    assert main(["sweep", str(cfg), "--grid", "model.dropout=0.0,7", "--out", str(tmp_path / "s"),
                 "--parallel", "2"]) == 2
    assert "sweep point dropout7" in capsys.readouterr().err
    assert not (tmp_path / "s" / "logs").exists()

