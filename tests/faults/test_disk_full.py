"""Promise 4: the disk fills up while a checkpoint, metrics.csv, events.jsonl or the cache is
written: the previous files stay valid, the run stops with one line naming the file and
the resume command, and the resume works once there is space again (ENOSPC injected)."""
import numpy as np

from full_disk import FullDisk
from run_configs import write_config, error_lines
from lowres.cli import main
from lowres.data.cache import cached_images
from lowres.data.read import read_dataset
from lowres.run.read import run_state
from lowres.run.log import read_events, read_metrics, read_status
from lowres.run import checkpoint


def _stopped_on_a_full_disk(capsys, run, path_part):
    err = error_lines(capsys)
    assert len(err) == 1, err
    assert "disk full while writing" in err[0] and path_part in err[0], err
    assert f"lowres train --resume {run}" in err[0]
    assert read_status(run)["state"] == "stopped" and run_state(run) == "stopped (resumable)"
    assert not list(run.glob(".*.tmp*")) and not list((run / "checkpoints").glob(".*.tmp*"))


def test_full_disk_while_writing_last_pt(tiny_data, tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 3, "augment": []}])
    run = tmp_path / "run"
    disk = FullDisk(monkeypatch, "last.pt", from_nth=2)  # epoch 1's last.pt lands, epoch 2's not
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 2
    _stopped_on_a_full_disk(capsys, run, "last.pt")
    assert checkpoint.load(run / "checkpoints" / "last.pt")["position"]["epoch"] == 1
    disk.free()
    assert main(["train", "--resume", str(run)]) == 0
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2", "3"]


def test_full_disk_while_appending_to_metrics_csv(tiny_data, tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    run = tmp_path / "run"
    disk = FullDisk(monkeypatch, "metrics.csv", from_nth=2, budget=20)  # row 2 gets 20 bytes
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 2
    _stopped_on_a_full_disk(capsys, run, "metrics.csv")
    text = (run / "metrics.csv").read_text()
    assert text.endswith("\n") and [r["epoch"] for r in read_metrics(run)] == ["1"]  # no half row
    disk.free()
    assert main(["train", "--resume", str(run)]) == 0
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2"]


def test_full_disk_while_appending_to_events_jsonl(tiny_data, tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    run = tmp_path / "run"
    # run_start, stage_start, best and the small-split warning land; epoch 2's first fails
    disk = FullDisk(monkeypatch, "events.jsonl", from_nth=5, budget=10)
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 2
    _stopped_on_a_full_disk(capsys, run, "events.jsonl")
    lines = (run / "events.jsonl").read_text().splitlines()
    assert len(read_events(run)) == len(lines) == 4  # every line whole
    disk.free()
    assert main(["train", "--resume", str(run)]) == 0
    assert read_events(run)[-1]["event"] == "run_end"


def test_full_disk_while_writing_the_cache(tiny_data, tmp_path, monkeypatch, capsys):
    """The cache is an optimisation: a full disk there costs the decode next time, never
    correctness; nothing half written is left for the next run to read."""
    paths = read_dataset(tiny_data).labelled.paths
    disk = FullDisk(monkeypatch, ".npy", budget=1000)
    first = cached_images(paths, tmp_path / "cache")
    assert "could not write the image cache" in capsys.readouterr().err
    assert list((tmp_path / "cache").iterdir()) == []
    disk.free()
    again = cached_images(paths, tmp_path / "cache")
    assert np.array_equal(first, again) and len(list((tmp_path / "cache").glob("*.npy"))) == 1
