"""`lowres tune --ray`: the search through Ray Tune on a local cluster of two nodes (a head
and a second `ray start` on this host, loopback only).

- The study Ray's OptunaSearch fills is the lowres study: every trial is finished or pruned,
  a pruned trial's run is a pruned (resumable) run that stopped early, a finished one ran
  every epoch, and best.yaml/report.html/`lowres runs` read it as they read a local search.
- A worker killed in the middle of a trial: Ray retries the trial, its run resumes from
  last.pt, the search finishes, and the trial's metrics equal those of a run never killed.
- A stopped search (Ctrl-C) resumes with the same command; more --trials add to it.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray.tune")
optuna = pytest.importorskip("optuna")

from ray_cluster import RAY_ENV  # noqa: E402
from run_configs import write_config  # noqa: E402
from lowres.cli import main  # noqa: E402
from lowres.run.read import PRUNED, run_state  # noqa: E402
from lowres.run.log import read_events, read_metrics  # noqa: E402

TIMING = {"images_per_s", "seconds", "elapsed"}
SPACE = "model.dropout: {low: 0.0, high: 0.5}\nstages.0.optimizer.lr: [0.00001, 0.1]\n"


def numbers(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_metrics(run_dir)]


def tune_cmd(cfg, space, out, address, *extra):
    return [sys.executable, "-m", "lowres", "tune", str(cfg), "--space", str(space), "--out",
            str(out), "--ray", address, "--seed", "0", *extra]


def run_env():
    return dict(os.environ, **RAY_ENV, LOWRES_PROGRESS="0")


def study_of(out):
    return optuna.load_study(study_name=out.name, storage=f"sqlite:///{out / 'study.db'}")


def wait_for_epochs(run_dir, epochs, proc, seconds=240):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(read_metrics(run_dir)) < epochs:
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    assert len(read_metrics(run_dir)) >= epochs, f"{run_dir} did not reach epoch {epochs}"


def test_ray_tune_fills_the_lowres_study_and_prunes_into_resumable_runs(
        two_nodes_for_module, tiny_data, tmp_path):
    epochs = 6
    cfg = write_config(tmp_path / "c.yaml", tiny_data,
                       stages=[{"epochs": epochs, "scheduler": {"name": "constant"}, "augment": []}])
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "search"
    done = subprocess.run(tune_cmd(cfg, space, out, two_nodes_for_module, "--trials", "6"),
                          capture_output=True, text=True, env=run_env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = study_of(out).trials
    assert len(trials) == 6
    states = {t.number: t.state for t in trials}
    assert set(states.values()) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert optuna.trial.TrialState.COMPLETE in states.values()
    for t in trials:
        run_dir = out / "trials" / f"trial{t.number:03d}"
        ran = len(read_metrics(run_dir))
        if t.state == optuna.trial.TrialState.PRUNED:
            assert ran < epochs and run_state(run_dir) == PRUNED, t.number
            assert (run_dir / "checkpoints" / "last.pt").is_file()
        else:
            assert ran == epochs and run_state(run_dir) == "finished", t.number
            assert t.value == pytest.approx(json.loads((run_dir / "status.json").read_text())
                                            ["best_val_acc"])
    assert (out / "best.yaml").is_file() and (out / "report.html").is_file()
    lines = [line for line in done.stdout.splitlines() if line.startswith("trial")]
    assert len(lines) == 6 and all(" | done " in line for line in lines)
    assert "Configuration for experiment" not in done.stdout  # Ray's own tables stay quiet


def test_a_killed_worker_resumes_its_trial_and_a_stopped_search_resumes(
        two_nodes_for_module, tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data,
                       stages=[{"epochs": 60, "scheduler": {"name": "constant"}, "augment": []}])
    space = tmp_path / "space.yaml"
    space.write_text("model.dropout: {low: 0.0, high: 0.5}\n")
    out = tmp_path / "search"
    cmd = tune_cmd(cfg, space, out, two_nodes_for_module, "--trials", "3", "--pruner", "none")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=run_env())
    victim = out / "trials" / "trial000"
    wait_for_epochs(victim, 3, proc)
    os.kill(json.loads((victim / "status.json").read_text())["pid"], signal.SIGKILL)
    wait_for_epochs(out / "trials" / "trial002", 2, proc)  # the third trial has started
    proc.send_signal(signal.SIGINT)  # stop the search: Ray saves its experiment
    first, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, first
    assert "trial000: its worker died; Ray retries it" in first
    assert "rerun the same command to resume" in first
    again = subprocess.run(cmd, capture_output=True, text=True, env=run_env(), timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming the Ray Tune experiment" in again.stdout
    study = study_of(out)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    resumes = sum(e["event"] == "resume" for e in read_events(victim))
    assert resumes >= 1  # Ray's retry resumed it from last.pt (and the rerun, if still running)
    # More --trials later: a new Ray experiment adds the rest to the same study.
    more = [*cmd[:cmd.index("--trials") + 1], "4", *cmd[cmd.index("--trials") + 2:]]
    added = subprocess.run(more, capture_output=True, text=True, env=run_env(), timeout=600)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "resuming" not in added.stdout and "trial003 finished" in added.stdout
    study = study_of(out)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    # The killed trial and the stopped one equal runs of their values that nothing interrupted.
    for t in (study.trials[0], study.trials[2]):
        alone = tmp_path / f"alone{t.number}"
        assert main(["train", str(cfg), f"model.dropout={t.params['model.dropout']}",
                     "train.threads=1", "--run-dir", str(alone)]) == 0
        assert numbers(out / "trials" / f"trial{t.number:03d}") == numbers(alone), t.number


def test_ray_needs_a_validation_split_and_refuses_parallel(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, data={"val_fraction": 0.0})
    space = tmp_path / "space.yaml"
    space.write_text("model.dropout: {low: 0.0, high: 0.5}\n")
    args = ["tune", str(cfg), "--space", str(space), "--trials", "2", "--out", str(tmp_path / "s")]
    assert main([*args, "--ray"]) == 2
    assert "no validation split" in capsys.readouterr().err
    assert main([*args, "--ray", "--parallel", "2"]) == 2
    assert "--ray and --parallel: choose one" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
