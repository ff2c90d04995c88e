"""Runs in a read-only folder (Kaggle's next session sees the last one's output as a
read-only input): resuming in place is one line naming the way on, `--resume RUN --run-dir
NEW` continues a copy as the same run, bitwise equal to a run never stopped, and every
reader works on the read-only run. The folder is a real read-only bind mount."""
import json
import os
import shutil

import pytest
import torch

from read_only_mount import read_only_view
from run_configs import error_lines, write_config
from lowres import api
from lowres.errors import LowresError
from lowres.cli import main
from lowres.run import checkpoint
from lowres.train.loop import train
from lowres.run.log import read_events, read_metrics, read_status

TIMING = {"images_per_s", "seconds", "elapsed"}
STAGES = [{"epochs": 2, "scheduler": {"name": "cosine"}, "augment": [{"op": "hflip", "p": 0.5}]},
          {"epochs": 1, "scheduler": {"name": "constant"}, "augment": [{"op": "erasing", "p": 0.5}]}]


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """A run never stopped, and the same run stopped mid-epoch (its folder, not yet mounted)."""
    root = tmp_path_factory.mktemp("ro")
    cfg = write_config(root / "c.yaml", tiny_data, stages=STAGES)
    assert train(cfg, run_dir=root / "straight").state == "finished"
    stopped = root / "session1" / "run"
    assert train(cfg, run_dir=stopped, pause_after_steps=3).state == "stopped"
    return root, stopped


def test_resume_in_place_on_a_read_only_run_is_one_line(runs, tmp_path, capsys):
    root, stopped = runs
    with read_only_view(stopped, tmp_path / "input" / "run") as ro:
        before = {p.name: p.read_bytes() for p in ro.rglob("*") if p.is_file()}
        assert main(["train", "--resume", str(ro)]) == 2
        lines = error_lines(capsys)
        assert len(lines) == 1 and "is read-only" in lines[0]
        assert f"lowres train --resume {ro} --run-dir NEW_DIR" in lines[0]
        assert {p.name: p.read_bytes() for p in ro.rglob("*") if p.is_file()} == before


def test_resume_into_a_new_dir_goes_on_as_one_run_bitwise(runs, tmp_path, capsys):
    root, stopped = runs
    new = tmp_path / "working" / "run"
    with read_only_view(stopped, tmp_path / "input" / "run") as ro:
        assert main(["train", "--resume", str(ro), "--run-dir", str(new), "--pause-after", "1"]) == 0
        assert f"lowres train --resume {new}" in capsys.readouterr().out
    assert read_status(new)["resume"] == f"lowres train --resume {new}"
    assert api.resume(new).state == "finished"  # then in place: the copy is writable
    a = checkpoint.load(root / "straight" / "checkpoints" / "last.pt")
    b = checkpoint.load(new / "checkpoints" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(read_metrics(new)) == strip(read_metrics(root / "straight"))  # one curve
    events = [e["event"] for e in read_events(new)]
    assert events[0] == "run_start" and events.count("moved") == 1
    moved = next(e for e in read_events(new) if e["event"] == "moved")
    assert moved["source"].endswith("input/run")
    assert not (new / ".lock").exists() or read_status(new)["state"] == "finished"


def test_a_new_dir_that_holds_something_is_refused(runs, tmp_path, capsys):
    _, stopped = runs
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert main(["train", "--resume", str(stopped), "--run-dir", str(taken)]) == 2
    assert "already exists and is not empty" in error_lines(capsys)[0]
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    # From Python: the same copy, the original untouched.
    original = {p.name: p.read_bytes() for p in stopped.rglob("*") if p.is_file() and p.name != ".lock"}
    (stopped / "export").mkdir(exist_ok=True)  # another command's output: not copied
    (stopped / "export" / "model.pt").write_bytes(b"a model")
    run = api.resume(stopped, "stages.1.epochs=1", run_dir=tmp_path / "copy", pause_after=1)
    assert not (tmp_path / "copy" / "export").exists()
    shutil.rmtree(stopped / "export")
    assert run.dir == tmp_path / "copy" and run.state.startswith("stopped")
    assert {p.name: p.read_bytes() for p in stopped.rglob("*")
            if p.is_file() and p.name != ".lock"} == original


def test_every_reader_works_on_a_read_only_run(runs, tiny_data, tmp_path, capsys, monkeypatch):
    root, _ = runs
    finished = root / "straight"
    monkeypatch.chdir(tmp_path)
    with read_only_view(finished, tmp_path / "input" / "run") as ro:
        assert main(["predict", str(ro), "--data", str(tiny_data), "--out", "sub.csv"]) == 0
        assert len((tmp_path / "sub.csv").read_text().splitlines()) == 13
        assert main(["evaluate", str(ro)]) == 0
        out = capsys.readouterr().out
        assert "is read-only: writing to" in out
        assert json.loads((tmp_path / "run-evaluation" / "evaluation.json").read_text())["images"] > 0
        assert main(["export", str(ro), "--format", "torchscript"]) == 0
        assert (tmp_path / "run-export" / "model.pt").is_file()
        assert main(["runs", str(ro.parent)]) == 0
        assert "finished" in capsys.readouterr().out
        assert main(["compare", str(ro), str(ro), "--out", str(tmp_path / "cmp")]) == 0
        loaded = api.load_run(ro)
        assert loaded.state == "finished" and loaded.best["val_acc"] is not None
        assert len(loaded.metrics) == 3 and loaded.events and loaded.config["seed"] == 0
        probs = loaded.model()(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
        assert probs.shape == (2, 4)
    shutil.rmtree(tmp_path / "run-export")


def test_a_refused_copy_leaves_nothing_so_the_fixed_command_works(runs, tmp_path, capsys):
    """A resume refused after the copy (a bad override, a finished run) removes its copy:
    the corrected command then finds --run-dir free, and the error names the run given."""
    root, stopped = runs
    new = tmp_path / "working" / "run"
    with read_only_view(stopped, tmp_path / "input" / "run") as ro:
        assert main(["train", "--resume", str(ro), "--run-dir", str(new), "train.batch_size=0"]) == 2
        assert "train.batch_size" in error_lines(capsys)[0]
        assert not new.exists() and list(new.parent.iterdir()) == []
        assert main(["train", "--resume", str(ro), "--run-dir", str(new), "--pause-after", "1"]) == 0
    assert read_status(new)["state"] == "stopped"
    with read_only_view(root / "straight", tmp_path / "input" / "done") as done:
        again = tmp_path / "working" / "again"
        assert main(["train", "--resume", str(done), "--run-dir", str(again)]) == 2
        err = error_lines(capsys)
        assert len(err) == 1 and f"{done} has already finished" in err[0], err
        assert f"lowres predict {done}" in err[0]  # what to do with a finished run instead
        assert not again.exists()


def test_a_run_that_another_process_trains_is_not_copied(runs, tmp_path, capsys):
    from lowres.run.lock import RunLock

    _, stopped = runs
    lock = RunLock(stopped).acquire()  # the live trainer
    try:
        assert main(["train", "--resume", str(stopped), "--run-dir", str(tmp_path / "c")]) == 2
        err = error_lines(capsys)
        assert len(err) == 1 and "being trained by another process" in err[0], err
        assert not (tmp_path / "c").exists()
    finally:
        lock.release()


def test_runs_shows_a_read_only_run_killed_on_another_machine_as_resumable(runs, tmp_path, capsys):
    """Kaggle ends a session that overran its 12 hours with a kill: the output the next
    session attaches says "running" on a host that is gone. Nothing can write a read-only
    folder through this view, so it is what a kill leaves: stopped and resumable."""
    _, stopped = runs
    killed = tmp_path / "killed"
    shutil.copytree(stopped, killed, ignore=shutil.ignore_patterns(".lock"))
    status = json.loads((killed / "status.json").read_text())
    status.update(state="running", host="kaggle-session-1", pid=123)
    (killed / "status.json").write_text(json.dumps(status))
    assert api.load_run(killed).state == "running? (host kaggle-session-1)"  # writable: can't tell
    with read_only_view(killed, tmp_path / "input" / "killed") as ro:
        assert api.load_run(ro).state == "stopped (resumable)"
        assert main(["runs", str(ro.parent)]) == 0
        assert "stopped (resumable)" in capsys.readouterr().out


def test_a_damaged_last_pt_in_a_read_only_run_falls_back_in_the_copy(runs, tmp_path, capsys):
    """The fallback to last.prev.pt moves the damaged file aside: in the copy, never in the
    read-only source (which could not take the rename)."""
    root, stopped = runs
    run = tmp_path / "run"
    shutil.copytree(stopped, run, ignore=shutil.ignore_patterns(".lock"))
    assert train(None, resume=run, pause_after_epochs=1).state == "stopped"  # last.prev.pt now
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # torn
    new = tmp_path / "new"
    with read_only_view(run, tmp_path / "input" / "run") as ro:
        before = {p.name: p.read_bytes() for p in ro.rglob("*") if p.is_file()}
        with pytest.raises(LowresError, match="is read-only"):
            api.resume(ro)  # in place: the same one line as the CLI
        assert main(["train", "--resume", str(ro), "--run-dir", str(new)]) == 0
        assert "resuming from last.prev.pt" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in ro.rglob("*") if p.is_file()} == before
    assert (new / "checkpoints" / "last.damaged.pt").is_file()
    a = checkpoint.load(root / "straight" / "checkpoints" / "last.pt")
    b = checkpoint.load(new / "checkpoints" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_copy_refused_for_changed_data_is_removed(runs, tiny_data, tmp_path, capsys):
    _, stopped = runs
    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    (other / "labels.csv").write_text("\n".join((other / "labels.csv").read_text().splitlines()[:-4]) + "\n")
    new = tmp_path / "new"
    with read_only_view(stopped, tmp_path / "input" / "run") as ro:
        assert main(["train", "--resume", str(ro), "--run-dir", str(new), f"data.root={other}"]) == 2
        err = error_lines(capsys)
        assert len(err) == 1 and "changed since its checkpoint" in err[0], err
        assert str(new) not in err[0]
    assert not new.exists()


def test_a_copy_a_kill_cut_short_is_cleared_by_the_next_one(runs, tmp_path):
    """A session killed mid-copy leaves a hidden `.NEW.tmp-copyPID` (checkpoint-sized, on a
    20 GB Kaggle disk); the next `--run-dir NEW` clears it, never a live process's copy."""
    _, stopped = runs
    new = tmp_path / "working" / "run"
    dead = tmp_path / "working" / ".run.tmp-copy999999999"  # no such pid
    live = tmp_path / "working" / f".run.tmp-copy{os.getppid()}"  # a live process's copy
    shutil.copytree(stopped, dead)
    live.mkdir()
    assert train(None, resume=stopped, run_dir=new, pause_after_epochs=1).state == "stopped"
    assert not dead.exists() and live.is_dir() and (new / "config.yaml").is_file()
