"""What the model gets wrong: most confused pairs, top losses (evaluate, report.html, API)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from read_only_mount import read_only_view
from run_configs import write_config
from lowres import api
from lowres.cli import main
from lowres.predict.interpret import most_confused, top_losses
from lowres.track.report import write_run_report
from lowres.train.loop import train


def test_most_confused_counts_a_hand_made_case():
    names = ["cat", "dog", "fox"]
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([1, 1, 2, 0, 0, 1, 2, 1, 1, 2])
    assert most_confused(labels, predicted, names) == [
        {"true": "cat", "predicted": "dog", "count": 2},
        {"true": "fox", "predicted": "dog", "count": 2},
        {"true": "cat", "predicted": "fox", "count": 1},
        {"true": "dog", "predicted": "cat", "count": 1},
        {"true": "dog", "predicted": "fox", "count": 1}]
    assert most_confused(labels, predicted, names, n=1, min_count=2) == [
        {"true": "cat", "predicted": "dog", "count": 2}]
    assert most_confused(labels, labels, names) == []


def test_top_losses_are_the_least_probable_true_classes_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([0, 0, 1, 0])
    rows = top_losses(probs, labels, ["a", "b"], ["w.png", "x.png", "y.png", "z.png"], n=3)
    assert [r["index"] for r in rows] == [3, 1, 2]
    assert [r["file"] for r in rows] == ["z.png", "x.png", "y.png"]
    assert rows[0] == {"index": 3, "file": "z.png", "true": "a", "predicted": "b",
                       "probability": pytest.approx(0.95), "loss": pytest.approx(-np.log(0.05))}
    assert [r["loss"] for r in rows] == sorted((r["loss"] for r in rows), reverse=True)


@pytest.fixture(scope="module")
def run(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("interp")
    cfg = write_config(root / "c.yaml", tiny_data, track={"plots": True, "report": True})
    assert train(cfg, run_dir=root / "run").state == "finished"
    return root / "run"


def test_evaluate_prints_pairs_writes_the_grid_and_the_report_shows_them(run, capsys):
    write_run_report(run, strict=True)
    assert "What the model gets wrong" not in (run / "report.html").read_text()  # not yet
    assert main(["evaluate", str(run), "--tta", "none"]) == 0
    out = capsys.readouterr().out
    assert "most confused (true -> predicted: images):" in out or "most confused: none" in out
    result = json.loads((run / "evaluation" / "evaluation.json").read_text())
    losses = result["top_losses"]
    assert len(losses) == 16 and [r["loss"] for r in losses] == sorted((r["loss"] for r in losses),
                                                                        reverse=True)
    assert all(r["file"].startswith("trainval/") for r in losses)  # the val images' own files
    errors = sum(p["count"] for p in result["most_confused"])
    assert errors == round((1 - result["accuracy"]) * result["images"]) or len(result["most_confused"]) == 10
    png = (run / "evaluation" / "top_losses.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    html = (run / "report.html").read_text()  # evaluate refreshed it
    assert "What the model gets wrong" in html and "Top losses" in html
    assert html.count("data:image/png;base64,") >= 2


def test_the_report_ignores_an_evaluation_of_an_older_lowres(run):
    folder = run / "evaluation"
    saved = (folder / "evaluation.json").read_text()
    try:
        (folder / "evaluation.json").write_text(json.dumps({"accuracy": 0.5, "per_class": {}}))
        write_run_report(run, strict=True)
        assert "What the model gets wrong" not in (run / "report.html").read_text()
        (folder / "evaluation.json").write_text("{torn")
        write_run_report(run, strict=True)
    finally:
        (folder / "evaluation.json").write_text(saved)


def test_api_top_losses_and_most_confused_are_dataframes(run):
    trained = api.load_run(run)
    frame = trained.top_losses(5, tta="none")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5
    assert list(frame.columns) == ["index", "file", "true", "predicted", "probability", "loss"]
    assert frame["loss"].is_monotonic_decreasing
    interp = trained.interpretation(tta="aug", tta_views=2)
    confused = interp.most_confused()
    assert list(confused.columns) == ["true", "predicted", "count"]
    assert confused["count"].is_monotonic_decreasing
    assert int(confused["count"].sum()) == int(round((1 - interp.accuracy) * len(interp.labels))) \
        or len(confused) == 10
    fig = interp.plot_top_losses(6)
    assert len([ax for ax in fig.axes if ax.images]) == 6
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    again = trained.top_losses(16, tta="none")  # the same as evaluate --tta none wrote
    assert list(again["index"]) == [r["index"] for r in evaluation["top_losses"]]
    assert list(again["loss"]) == pytest.approx([r["loss"] for r in evaluation["top_losses"]])


def test_evaluate_on_a_read_only_run_writes_beside_it(run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with read_only_view(run, tmp_path / "input" / "run") as ro:
        assert main(["evaluate", str(ro), "--tta", "aug", "--tta-views", "2"]) == 0
        assert "is read-only: writing to" in capsys.readouterr().out
    assert (tmp_path / "run-evaluation" / "top_losses.png").is_file()
    result = json.loads((tmp_path / "run-evaluation" / "evaluation.json").read_text())
    assert result["tta"] == "aug" and len(result["top_losses"]) == 16
