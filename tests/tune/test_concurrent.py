"""Two `lowres tune` processes on one SQLite study at the same time: the study ends with
exactly the asked number of trials, each finished or pruned, none left running, and no
trial trained twice."""
import os
import subprocess
import sys

import pytest
import yaml
from run_configs import write_config

optuna = pytest.importorskip("optuna")


@pytest.fixture
def one_epoch_search(tmp_path, tiny_data):
    """A base config of one short epoch and a one-key space: (config, space)."""
    cfg = write_config(tmp_path / "c.yaml", tiny_data, data={"per_class": 8},
                       stages=[{"epochs": 1, "scheduler": {"name": "constant"}}])
    space = tmp_path / "space.yaml"
    space.write_text("model.dropout: {low: 0.0, high: 0.5}\n")
    return cfg, space


def test_two_processes_share_one_sqlite_study(tmp_path, one_epoch_search):
    cfg, space = one_epoch_search
    out = tmp_path / "search"
    out.mkdir()  # both processes open the same study.db
    cmd = [sys.executable, "-m", "lowres", "tune", str(cfg), "--space", str(space),
           "--trials", "4", "--out", str(out), "--pruner", "none"]
    env = dict(os.environ, LOWRES_PROGRESS="0")
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    counted = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert len(counted) == 4
    assert {t.state.name for t in counted} == {"COMPLETE"}
    assert sorted(t.number for t in counted) == [0, 1, 2, 3]
    runs = sorted(p.name for p in (out / "trials").iterdir())
    assert runs == ["trial000", "trial001", "trial002", "trial003"]
    ended = [line for text in outputs for line in text.splitlines() if " finished val " in line]
    assert len(ended) == 4  # each trial trained by one process only


def test_parallel_starts_workers_that_share_the_study(tmp_path, one_epoch_search):
    from lowres.tune import run_tune

    cfg, space = one_epoch_search
    out = tmp_path / "search"
    result = run_tune(cfg, space, 3, out, pruner="none", parallel=2, say=lambda line: None)
    assert sorted(r["name"] for r in result.trials) == ["trial000", "trial001", "trial002"]
    assert {r["state"] for r in result.trials} == {"finished"}
    assert (out / "worker1.log").is_file() and (out / "best.yaml").is_file()
    share = max(1, (os.cpu_count() or 1) // 2)  # two workers share the cores
    for trial in (out / "trials").iterdir():
        assert yaml.safe_load((trial / "config.yaml").read_text())["train"]["threads"] == share


def test_each_parallel_worker_gets_its_gpu_or_its_share_of_the_cores(monkeypatch):
    import torch

    from lowres.tune.search import worker_envs

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert worker_envs(2, 1, []) == [{"LOWRES_THREADS": "4"}] * 2
    assert worker_envs(2, 1, ["train.threads=3"]) == [{}, {}]  # the user's choice stands
    assert worker_envs(1, 1, []) == [{}]  # alone: torch's own default
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # Worker 0 is this process: its default device is the first GPU, the one it is given.
    assert worker_envs(2, 1, []) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in worker_envs(4, 2, [])] == ["0", "0", "1", "1"]


def test_the_helper_processes_start_with_their_environment(monkeypatch, tmp_path):
    from lowres.tune import search

    started = []

    class FakePopen:
        def __init__(self, cmd, stdout, stderr, env):
            started.append((cmd, env))

    monkeypatch.setattr(search.subprocess, "Popen", FakePopen)
    envs = [{"CUDA_VISIBLE_DEVICES": "1"}, {"CUDA_VISIBLE_DEVICES": "2"}]
    search._start_helpers(envs, "c.yaml", "s.yaml", 4, tmp_path, [], None, "x", "asha", 2)
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["1", "2"]
    assert all("--worker" in cmd and cmd[cmd.index("--grace-epochs") + 1] == "2" for cmd, _ in started)
