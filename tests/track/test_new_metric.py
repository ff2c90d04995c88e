"""The walk-through of run/metrics.py: a new per-epoch metric needs one row in the table
to reach metrics.csv, report.html, a plot panel and TensorBoard."""
import dataclasses

import pytest
from htmlcheck import parse

import lowres.track.tensorboard as tb
from lowres.run import metrics
from lowres.track.plots import draw_panel, new_figure
from lowres.track.report import write_run_report
from lowres.run.read import load_run
from lowres.run.log import RunLog, read_metrics

GRAD_NORM = metrics.Metric("grad_norm", "loss", "loss", "gradient norm",
                           {"color": "tab:brown"}, tag="grad/norm")


@pytest.fixture
def with_grad_norm(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", [*metrics.METRICS, GRAD_NORM])


def test_one_row_shows_a_new_metric_everywhere(tmp_path, monkeypatch, with_grad_norm):
    logged = []

    class Writer:  # stands in for torch's SummaryWriter
        def __init__(self, log_dir):
            pass

        def add_scalar(self, tag, value, step):
            logged.append((tag, value, step))

        def flush(self):
            pass

    monkeypatch.setattr(tb, "_summary_writer_class", lambda: Writer)
    board = tb.TensorBoardLogger(tmp_path, enabled=True)
    run = tmp_path / "r"
    log = RunLog(run)
    (run / "config.yaml").write_text("seed: 0\n")
    for epoch, norm in ((1, 3.25), (2, 1.5)):
        row = {"epoch": epoch, "stage": 0, "stage_name": "s1", "train_loss": 2.0 / epoch,
               "val_acc": 0.3 * epoch, "grad_norm": norm}
        log.append_metrics(row)  # what train/loop.py (end_epoch) does with each epoch's row
        board.log_epoch(row)

    rows = read_metrics(run)
    assert list(rows[0])[-1] == "grad_norm"
    assert [r["grad_norm"] for r in rows] == ["3.25", "1.5"]

    s = parse(write_run_report(run, strict=True).read_text())
    assert "grad norm" in s.text and "3.25" in s.text

    fig, ax = new_figure()
    assert draw_panel(ax, load_run(run), "loss")
    assert "gradient norm" in ax.get_legend_handles_labels()[1]

    assert ("grad/norm", 3.25, 1) in logged and ("grad/norm", 1.5, 2) in logged


def test_a_key_not_in_the_table_is_a_producer_error(tmp_path):
    log = RunLog(tmp_path / "r")
    with pytest.raises(ValueError, match="grad_norm"):
        log.append_metrics({"epoch": 1, "grad_norm": 1.0})
    assert not log.metrics_path.exists()
    # Rank != 0 writes nothing, but the same row is the same mistake there.
    with pytest.raises(ValueError, match="grad_norm"):
        RunLog(tmp_path / "r", enabled=False).append_metrics({"epoch": 1, "grad_norm": 1.0})


def test_metrics_csv_header_is_unchanged():
    # Old run directories are read by name; the producer writes these, in this order.
    assert metrics.columns() == [
        "epoch", "stage", "stage_name", "stage_epoch", "lr", "train_loss", "train_acc",
        "val_loss", "val_acc", "ema_val_loss", "ema_val_acc", "images_per_s", "seconds",
        "elapsed", "val_images", "val_acc_low", "val_acc_high"]


def test_every_plotted_or_logged_metric_is_numeric():
    for m in metrics.METRICS:
        if m.panel or m.tag:
            assert m.fmt in metrics.FORMATS, dataclasses.asdict(m)
