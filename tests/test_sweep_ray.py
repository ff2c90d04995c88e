"""`lowres sweep --ray`: a local Ray cluster of two nodes (a head and a second `ray start` on
this host, loopback only). A worker killed in the middle of a trial: Ray retries the task,
the trial resumes from its last.pt, the sweep finishes, and the killed trial's metrics
equal those of a run never killed."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ray = pytest.importorskip("ray")

from ray_cluster import free_port  # noqa: E402
from run_configs import write_config  # noqa: E402
from lowres.cli import main  # noqa: E402
from lowres.run.read import run_state  # noqa: E402
from lowres.run.log import read_events, read_metrics  # noqa: E402

TIMING = {"images_per_s", "seconds", "elapsed"}


def numbers(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_metrics(run_dir)]


def test_a_killed_worker_resumes_its_trial_and_the_sweep_finishes(two_nodes, tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 25, "augment": []}])
    grid = ["--grid", "model.dropout=0.0,0.2", "train.threads=1"]
    proc = subprocess.Popen([sys.executable, "-m", "lowres", "sweep", str(cfg), *grid, "--out",
                             str(tmp_path / "ray"), "--ray", two_nodes], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, RAY_AUTH_MODE="disabled"))
    victim = tmp_path / "ray" / "dropout0.0"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(read_metrics(victim)) < 3:
        time.sleep(0.2)
    pid = json.loads((victim / "status.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # the Ray worker process that trains this point
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert run_state(victim) == "finished" and run_state(tmp_path / "ray" / "dropout0.2") == "finished"
    assert sum(e["event"] == "resume" for e in read_events(victim)) == 1  # Ray's retry resumed it
    assert main(["sweep", str(cfg), *grid, "--out", str(tmp_path / "local")]) == 0
    for name in ("dropout0.0", "dropout0.2"):
        assert numbers(tmp_path / "ray" / name) == numbers(tmp_path / "local" / name), name


def test_without_a_cluster_at_the_address_is_one_line(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    assert main(["sweep", str(cfg), "--grid", "model.dropout=0.0", "--out", str(tmp_path / "s"),
                 "--ray", f"127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lowres: error: --ray 127.0.0.1:") and "ray start --head" in err[-1]
