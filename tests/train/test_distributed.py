"""torchrun with 2 CPU processes (gloo) against one process with the same global batch."""
import json
import os
import subprocess
import sys

import pytest

from run_configs import write_config
from lowres.run.log import read_events, read_metrics, read_status
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


DRIVER = '''
import json, os, sys
import numpy as np
from lowres.train import engine, schedules
rank = int(os.environ["RANK"])
calls = [0]

def evaluate_per_image(self, model, images, labels, pipeline, batch_size):
    # Two ranks that see different accuracies (bf16, cuDNN autotuning): rank 0's rise,
    # rank 1's fall, so a plateau rule taken per rank would lower only rank 1's LR.
    calls[0] += 1
    acc = 0.5 + (0.1 if rank == 0 else -0.1) * calls[0]
    n = len(labels)
    return engine.Evaluation(1.0, acc, np.arange(n) < acc * n, np.ones(n, np.float32))

engine.Engine.evaluate_per_image = evaluate_per_image
drops = []
epoch_end = schedules.Schedule.epoch_end

def recorded(self, metrics):
    dropped = epoch_end(self, metrics)
    drops.append(bool(dropped))
    return dropped

schedules.Schedule.epoch_end = recorded
from lowres.cli import main
code = main(sys.argv[1:])
with open(os.environ["DECISIONS"] + f".{rank}", "w") as f:
    json.dump(drops, f)
sys.exit(code)
'''


def test_ranks_take_the_same_decisions_even_when_their_accuracies_differ(tiny_data, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    cfg = write_config(tmp_path / "c.yaml", tiny_data,
                       stages=[{"epochs": 3, "augment": [],
                                "scheduler": {"name": "plateau", "patience": 0, "cooldown": 0}}])
    decisions = tmp_path / "decisions"
    env = dict(os.environ, LOWRES_BACKEND="gloo", OMP_NUM_THREADS="1", DECISIONS=str(decisions))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(driver), "train", str(cfg), "--run-dir", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = json.loads((tmp_path / "decisions.0").read_text())
    rank1 = json.loads((tmp_path / "decisions.1").read_text())
    assert rank0 == rank1 == [False, False, False]  # rank 0's rising accuracy decides
