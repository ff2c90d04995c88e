"""ARCHITECTURE.md's "to add a per-epoch metric" walk-through, end to end: the metric is
computed where evaluation happens (train/engine.py's `Evaluation.metrics`) and described by
one row of run/metrics.py; a real training run then carries it to metrics.csv and
report.html without any other file knowing its name (tests/track/test_new_metric.py follows
the same row into the plots and TensorBoard)."""
import dataclasses

import pytest

from lowres.run import metrics
from lowres.run.log import read_metrics
from lowres.train import engine
from lowres.train.loop import train
from run_configs import write_config

VAL_ERROR = metrics.Metric("val_error", "percent", "accuracy", "val error",
                           {"color": "tab:red"}, tag="error/val")


@pytest.fixture
def with_val_error(monkeypatch):
    """The two edits of the walk-through, made at test time."""
    computed = engine.Evaluation.metrics

    def with_error(self, prefix):  # engine.py: one more entry of Evaluation.metrics
        values = computed(self, prefix)
        if prefix == "val_" and values["val_acc"] is not None:
            values["val_error"] = 1.0 - values["val_acc"]
        return values

    monkeypatch.setattr(engine.Evaluation, "metrics", with_error)
    monkeypatch.setattr(metrics, "METRICS", [*metrics.METRICS, VAL_ERROR])  # run/metrics.py


def test_a_metric_computed_in_evaluation_reaches_metrics_csv_and_the_report(
        tiny_data, tmp_path, with_val_error):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, track={"plots": True, "report": True})
    result = train(cfg, ["stages.0.epochs=1"], run_dir=tmp_path / "run")
    rows = read_metrics(result.run_dir)
    assert len(rows) == 1 and float(rows[0]["val_error"]) == pytest.approx(
        1.0 - float(rows[0]["val_acc"]), abs=1e-5)
    assert "val error" in (result.run_dir / "report.html").read_text()


def test_without_the_table_row_the_producer_is_told(tiny_data, tmp_path, monkeypatch):
    """A metric computed but not described is a programming error, not a silent drop."""
    computed = engine.Evaluation.metrics
    monkeypatch.setattr(engine.Evaluation, "metrics",
                        lambda self, prefix: {**computed(self, prefix), f"{prefix}error": 0.0})
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    with pytest.raises(ValueError, match="val_error"):
        train(cfg, ["stages.0.epochs=1"], run_dir=tmp_path / "run")


def test_evaluation_metrics_are_named_as_metrics_csv_names_them():
    import numpy as np

    ev = engine.Evaluation(0.5, 0.75, np.ones(4, bool), np.zeros(4, np.float32))
    assert ev.metrics("ema_val_") == {"ema_val_loss": 0.5, "ema_val_acc": 0.75}
    empty = dataclasses.replace(ev, loss=float("nan"), acc=float("nan"))
    assert empty.metrics("val_") == {"val_loss": None, "val_acc": None}  # no split: empty cells
