import os
import socket
import subprocess
import sys
import time

from track_fakes import make_run

from lowres.run.read import run_state
from lowres.run.log import RunLog
from lowres.run.listing import find_run_dirs, format_runs_table, list_runs


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_status_logic(tmp_path):
    dead = dead_pid()
    cases = {
        "fin": dict(state="finished"),
        "stopped_ckpt": dict(state="stopped", last_pt=True),
        "stopped_nockpt": dict(state="stopped", last_pt=False),
        "alive": dict(state="running", pid=os.getpid()),
        "killed_ckpt": dict(state="running", pid=dead, last_pt=True),
        "killed_nockpt": dict(state="running", pid=dead, last_pt=False),
        "failed": dict(state="failed", last_pt=True),
        "elsewhere": dict(state="running", pid=dead, host="other-host-xyz"),
    }
    for name, kw in cases.items():
        make_run(tmp_path / name, epochs=2, **kw)
    got = {r["name"]: r["status"] for r in list_runs(tmp_path)}
    assert got == {
        "fin": "finished",
        "stopped_ckpt": "stopped (resumable)",
        "stopped_nockpt": "failed",
        "alive": "running",
        "killed_ckpt": "stopped (resumable)",
        "killed_nockpt": "failed",
        "failed": "failed",
        "elsewhere": "running? (host other-host-xyz)",
    }
    assert socket.gethostname() != "other-host-xyz"


def test_no_status_file(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 1\n")
    assert run_state(run) == "unknown"


def test_recursive_newest_first_and_fields(tmp_path):
    make_run(tmp_path / "old", epochs=5)
    time.sleep(1.1)  # event times have one-second resolution
    make_run(tmp_path / "sweep1" / "lr0.1_seed0", epochs=7, acc_offset=0.1)
    (tmp_path / "sweep1" / "comparison").mkdir()  # no config.yaml: not a run
    (tmp_path / ".hidden" / "x").mkdir(parents=True)
    (tmp_path / ".hidden" / "x" / "config.yaml").write_text("seed: 0\n")
    rows = list_runs(tmp_path)
    assert [r["name"] for r in rows] == ["sweep1/lr0.1_seed0", "old"]
    new = rows[0]
    assert new["epochs_done"] == 7 and new["max_epochs"] == 10 and new["stages"] == 2
    assert new["batch_size"] == 200 and new["model"] == "resnet18"
    assert abs(new["best_val_acc"] - 0.62) < 1e-9 and new["best_epoch"] == 7
    assert abs(new["last_val_acc"] - 0.62) < 1e-9
    assert new["wall_seconds"] == 17.5
    assert new["config"] == "resnet18, 2 stages, <=10 ep, bs 200"


def test_run_dir_itself_and_missing_root(tmp_path):
    run = make_run(tmp_path / "solo", epochs=1)
    assert [r["name"] for r in list_runs(run)] == ["solo"]
    assert list_runs(tmp_path / "nope") == []
    assert "no runs" in format_runs_table([])


def test_checkpoint_dirs_not_searched(tmp_path):
    run = make_run(tmp_path / "r", epochs=1)
    (run / "checkpoints" / "config.yaml").write_text("seed: 0\n")
    assert find_run_dirs(tmp_path) == [run]


def test_accuracies_are_fractions_shown_in_percent(tmp_path):
    run = tmp_path / "frac"
    log = RunLog(run)
    (run / "config.yaml").write_text("seed: 0\n")
    log.append_metrics({"epoch": 1, "stage": 0, "val_acc": 0.455, "train_acc": 0.5,
                        "val_images": 200})
    log.set_status("finished")
    row = list_runs(tmp_path)[0]
    assert row["best_val_acc"] == 0.455
    low, high = row["best_val_interval"]
    assert 0.38 < low < 0.455 < high < 0.53
    assert "45.50% (" in format_runs_table([row])


def test_table_aligned(tmp_path):
    make_run(tmp_path / "a", epochs=3)
    make_run(tmp_path / "much-longer-name", epochs=12, state="stopped")
    text = format_runs_table(list_runs(tmp_path))
    lines = text.splitlines()
    assert lines[0].startswith("RUN") and len(lines) == 3
    col = lines[0].index("STATUS")
    assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines)
    assert "stopped (resumable)" in text and "finished" in text
    assert "3/10" in text and "0:00:08" in text  # 7.5 s rounds to 8
