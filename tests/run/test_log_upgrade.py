"""A run started before metrics.csv had interval columns stays one readable table."""
import csv

from lowres.run.metrics import columns
from lowres.run.log import RunLog, read_metrics

METRIC_COLUMNS = columns()

OLD_HEADER = [c for c in METRIC_COLUMNS if c not in ("val_images", "val_acc_low", "val_acc_high")]


def test_appending_to_an_older_metrics_file_rewrites_its_header(tmp_path):
    log = RunLog(tmp_path / "run")
    with open(log.metrics_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(OLD_HEADER)
        w.writerow(["1" if c == "epoch" else "0.25" if c == "val_acc" else "" for c in OLD_HEADER])
    log.append_metrics({"epoch": 2, "val_acc": 0.5, "val_images": 100, "val_acc_low": 0.4038,
                        "val_acc_high": 0.5962})
    rows = read_metrics(tmp_path / "run")
    assert list(rows[0]) == METRIC_COLUMNS
    assert [(r["epoch"], r["val_acc"], r["val_images"]) for r in rows] == [
        ("1", "0.25", ""), ("2", "0.5", "100")]
