"""`--devices N`: lowres starts the DDP processes itself with torch's elastic launcher (2
gloo CPU processes here), from the command line and from Python: rank 0's lines reach the
caller, a signal stops every rank with a saved checkpoint, a rank's error is the caller's
one-line error."""
import os
import signal
import subprocess
import sys

import pytest

from run_configs import write_config
from lowres import api
from lowres.cli import main
from lowres.errors import ConfigError, DataError
from lowres.run.log import read_events, read_metrics, read_status
from lowres.train.loop import train

LOSS_RTOL = 0.03  # as tests/train/test_distributed.py: per-rank batch norm differs slightly
STAGE = [{"epochs": 2, "scheduler": {"name": "constant"}, "augment": []}]


@pytest.fixture(autouse=True)
def gloo(monkeypatch):
    monkeypatch.setenv("LOWRES_BACKEND", "gloo")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_devices_2_from_the_command_line_matches_one_process(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=STAGE, model={"dropout": 0.0})
    single = train(cfg, run_dir=tmp_path / "one")
    capsys.readouterr()
    two = tmp_path / "two"
    assert main(["train", str(cfg), "--run-dir", str(two), "--devices", "2", "--pause-after", "1"]) == 0
    out = capsys.readouterr().out
    assert "epoch   1 stage1 1/2" in out and f"resume with: lowres train --resume {two}" in out
    assert read_status(two)["state"] == "stopped"
    rows, one_rows = read_metrics(two), read_metrics(single.run_dir)
    assert len(rows) == 1 and float(rows[0]["train_loss"]) == pytest.approx(
        float(one_rows[0]["train_loss"]), rel=LOSS_RTOL)
    # From Python, on 2 processes again: the run finishes as one curve.
    run = api.resume(two, devices=2)
    assert run.state == "finished" and [r["epoch"] for r in read_metrics(two)] == ["1", "2"]
    assert [e["world_size"] for e in read_events(two) if "world_size" in e] == [2, 2]


def test_errors_come_back_as_one_line(tiny_data, tmp_path, capsys, monkeypatch):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "no-such-data", stages=STAGE)
    with pytest.raises(DataError):  # raised in every rank, re-raised here as itself
        api.train(cfg, run_dir=tmp_path / "r", devices=2)
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "r"), "--devices", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lowres: error:") and "no-such-data" in err[0]
    assert main(["train", str(cfg), "--devices", "0"]) == 2
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="already runs under torchrun"):
        api.train(cfg, devices=2)


def test_a_signal_stops_every_rank_with_a_checkpoint(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{**STAGE[0], "epochs": 500}])
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "lowres", "train", str(cfg), "--run-dir", str(run),
                             "--devices", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ))
    lines = []
    for line in proc.stdout:  # wait for training to be under way, then Ctrl-C
        lines.append(line)
        if line.startswith("epoch   2"):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=120)
    text = "".join(lines) + rest
    assert proc.returncode == 0, text
    assert text.count("SIGINT received") == 1  # one voice: rank 0
    assert f"resume with: lowres train --resume {run}" in text
    status = read_status(run)
    assert status["state"] == "stopped" and status["reason"] == "SIGINT"
    epochs = len(read_metrics(run))
    assert 2 <= epochs < 500
    done = api.resume(run, "stages.0.epochs=" + str(epochs + 1), devices=2)
    assert done.state == "finished" and len(read_metrics(run)) == epochs + 1


def test_a_script_without_a_main_guard_can_train_on_2_devices(tiny_data, tmp_path):
    """Spawned processes would import the caller's script again (and train again, forever)
    were it not hidden from them while they start."""
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{**STAGE[0], "epochs": 1}])
    script = tmp_path / "train_it.py"
    script.write_text(f"import lowres\nrun = lowres.train({str(cfg)!r}, run_dir={str(tmp_path / 'run')!r}, "
                      f"devices=2)\nprint('STATE', run.state)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("STATE finished") == 1
