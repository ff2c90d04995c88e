"""Run directories written by an earlier lowres stay usable: the checked-in fixture
(tests/fixtures/run_made_by_0_1_0) was written by lowres 0.1.0 (commit db6734e, before the
package regrouping): a resnet8 run on 3 synthetic classes, paused after stage 1 of 2, with
its dataset beside it. Every command a user has for such a run must still work on it."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

import lowres
from lowres.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "run_made_by_0_1_0"


@pytest.fixture
def old_run(tmp_path) -> tuple[Path, Path]:
    shutil.copytree(FIXTURE, tmp_path / "old")
    return tmp_path / "old" / "run", tmp_path / "old" / "data"


def test_an_old_stopped_run_resumes_to_the_end_and_predicts(old_run, tmp_path):
    run, data = old_run
    # the saved data.root is where the run was made; a moved dataset is an override
    finished = lowres.resume(run, f"data.root={data}")
    assert finished.state == "finished"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    events = [json.loads(line)["event"] for line in (run / "events.jsonl").open()]
    assert "resume" in events and events[-1] == "run_end"

    submission = tmp_path / "submission.csv"
    assert main(["predict", str(run), "--data", str(data), "--out", str(submission)]) == 0
    lines = submission.read_text().splitlines()
    assert len(lines) == 1 + 6  # header + 3 classes x 2 test images
    assert lowres.evaluate(run, data)["accuracy"] >= 0


def test_an_old_run_is_read_as_it_was_written(old_run, capsys):
    run, data = old_run
    loaded = lowres.load_run(run)
    assert loaded.state.startswith("stopped")
    assert list(loaded.metrics["epoch"]) == [1, 2]
    assert loaded.config["model"]["name"] == "resnet8"
    assert main(["runs", str(run.parent)]) == 0
    assert "run" in capsys.readouterr().out
    assert loaded.model("best") is not None
