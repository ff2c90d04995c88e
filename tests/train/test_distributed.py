"""torchrun with 2 CPU processes (gloo) against one process with the same global batch."""
import os
import subprocess
import sys

import pytest

from run_configs import write_config
from lowres.track.runlog import read_events, read_metrics, read_status
from lowres.train.loop import train

# Each rank normalises its own half-batch in batch norm, so two processes are not bitwise
# equal to one; the first epoch's training loss agrees to within this relative tolerance.
LOSS_RTOL = 0.03


def torchrun(*args, env_extra=None):
    env = dict(os.environ, LOWRES_BACKEND="gloo", OMP_NUM_THREADS="1", **(env_extra or {}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lowres", "train", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_processes_match_one_and_resume_with_another_count(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data,
                       stages=[{"epochs": 2, "scheduler": {"name": "constant"}, "augment": []}],
                       model={"dropout": 0.0})
    single = train(cfg, run_dir=tmp_path / "one")
    assert single.state == "finished"
    two = tmp_path / "two"
    torchrun(str(cfg), "--run-dir", str(two), "--pause-after", "1")
    assert read_status(two)["state"] == "stopped"
    rows = read_metrics(two)
    assert len(rows) == 1  # rank 0 alone writes
    one_rows = read_metrics(tmp_path / "one")
    assert float(rows[0]["train_loss"]) == pytest.approx(float(one_rows[0]["train_loss"]),
                                                          rel=LOSS_RTOL)
    # Resume the 2-process run with 1 process: same global batches, one continuous curve.
    assert train(None, resume=two).state == "finished"
    assert [r["epoch"] for r in read_metrics(two)] == ["1", "2"]
    events = [e["event"] for e in read_events(two)]
    assert events.count("run_start") == 1 and events.count("resume") == 1
    assert [e["world_size"] for e in read_events(two) if "world_size" in e] == [2, 1]
