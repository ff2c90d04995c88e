"""Promise 5: one run directory, one writer. A second trainer of a live run is refused in
one line naming the other pid, and changes nothing; a lock left by a killed process is
taken over; `lowres runs` never shows a dead run as running."""
import json
import os
import signal
import socket
import subprocess
import sys

from run_configs import write_config, error_lines
from lowres.cli import main
from lowres.run.lock import RunLock, held_by_other
from lowres.run.read import run_state
from lowres.run.log import read_metrics
from lowres.train.loop import train

HOLD_AND_DIE = ("import os, signal, sys; from lowres.run.lock import RunLock; "
                "RunLock(sys.argv[1]).acquire(); print(os.getpid(), flush=True); "
                "os.kill(os.getpid(), signal.SIGKILL)")


def _paused_run(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    run = tmp_path / "run"
    assert train(cfg, run_dir=run, pause_after_steps=2).state == "stopped"
    return run


def test_a_second_trainer_is_refused_naming_the_first(tiny_data, tmp_path, capsys):
    run = _paused_run(tiny_data, tmp_path)
    capsys.readouterr()
    before = {p: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    metrics = (run / "metrics.csv").read_bytes() if (run / "metrics.csv").exists() else None
    first = RunLock(run).acquire()  # the first trainer (this process, another descriptor)
    try:
        assert held_by_other(run) is True
        assert main(["train", "--resume", str(run)]) == 2
        err = error_lines(capsys)
        assert len(err) == 1 and f"pid {os.getpid()}" in err[0] and str(run) in err[0], err
        # A new run into the same directory is refused too (it is not empty).
        assert main(["train", str(tmp_path / "c.yaml"), "--run-dir", str(run)]) == 2
    finally:
        first.release()
    assert {p: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before
    assert ((run / "metrics.csv").read_bytes() if metrics is not None else None) == metrics
    assert held_by_other(run) is False


def test_a_lock_left_by_a_killed_process_is_taken_over(tiny_data, tmp_path, capsys):
    run = _paused_run(tiny_data, tmp_path)
    done = subprocess.run([sys.executable, "-c", HOLD_AND_DIE, str(run)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    dead_pid = int(done.stdout.split()[0])
    assert json.loads((run / ".lock").read_text())["pid"] == dead_pid  # the stale record
    assert held_by_other(run) is False
    capsys.readouterr()
    assert train(None, resume=run).state == "finished"
    err = capsys.readouterr().err
    assert f"took over the lock of {run} left by pid {dead_pid}" in err
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2"]


def test_runs_never_shows_a_dead_run_as_running(tiny_data, tmp_path):
    run = _paused_run(tiny_data, tmp_path)
    status = {"state": "running", "host": socket.gethostname()}
    # Killed: its pid is gone.
    (run / "status.json").write_text(json.dumps(dict(status, pid=2**22 + 12345)))
    assert run_state(run) == "stopped (resumable)"
    # Killed, and its pid reused by a live process (here: this one): the free lock tells.
    (run / "status.json").write_text(json.dumps(dict(status, pid=os.getpid())))
    assert run_state(run) == "stopped (resumable)"
    lock = RunLock(run).acquire()
    try:
        assert run_state(run) == "running"
    finally:
        lock.release()


def test_a_sweep_skips_a_point_another_process_is_training(tmp_path, capsys):
    """A second sweep process (or a hand-started trainer) holds one point's lock: this
    sweep leaves that point alone, neither training it nor setting its directory aside."""
    import sys as _sys
    from pathlib import Path

    import yaml

    _sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "track"))
    from track_fakes import BASE_CONFIG, make_run

    from lowres.sweep.points import run_sweep

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(BASE_CONFIG, sort_keys=False))
    sweep_dir = tmp_path / "sw"
    busy = sweep_dir / "dropout0.5"
    lock = RunLock(busy).acquire()  # started by the other process, nothing written yet
    calls = []

    def fake_train(config_path, overrides, run_dir, resume):
        calls.append(Path(run_dir).name)
        make_run(run_dir, epochs=3)

    try:
        run_sweep(base, ["model.dropout=0.5,0.8"], None, sweep_dir, fake_train, check_config=False)
    finally:
        lock.release()
    assert calls == ["dropout0.8"]
    assert busy.is_dir() and not list(sweep_dir.glob("dropout0.5.attempt*"))
    assert "dropout0.5: running in another process" in capsys.readouterr().out
