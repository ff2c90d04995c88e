"""What a kill leaves in the append-only files, repaired: a torn metrics header or row, a
torn events line (no training here: the kill tests train; these pin the repairs)."""
import csv

from lowres.basics.disk import append_text
from lowres.run.metrics import columns
from lowres.run.log import RunLog, read_events, read_metrics

METRIC_COLUMNS = columns()


def _row(epoch):
    return ",".join([str(epoch)] + ["1"] * (len(METRIC_COLUMNS) - 1)) + "\r\n"


def test_a_header_torn_inside_a_name_or_at_a_comma_is_written_whole(tmp_path):
    for torn in ("epoch,stage,sta", "epoch,stage"):
        log = RunLog(tmp_path / torn.replace(",", "_"))
        log.metrics_path.write_text(torn)  # the kill, then a resumed run's appends:
        append_text(log.metrics_path, _row(1) + _row(2))
        log.truncate_metrics(1)
        with open(log.metrics_path, newline="") as f:
            header, *rows = list(csv.reader(f))
        assert header == METRIC_COLUMNS and [r[0] for r in rows] == ["1"], torn


def test_a_torn_row_is_dropped_and_an_older_complete_header_kept(tmp_path):
    log = RunLog(tmp_path / "a")
    log.metrics_path.write_text(",".join(METRIC_COLUMNS) + "\r\n" + _row(1) + _row(2)[:9])
    log.truncate_metrics(5)
    assert [r["epoch"] for r in read_metrics(log.dir)] == ["1"]
    old = RunLog(tmp_path / "b")  # a format with fewer columns, rows that match it
    old.metrics_path.write_text("epoch,stage\r\n1,0\r\n2,0\r\n")
    old.truncate_metrics(1)
    assert old.metrics_path.read_bytes() == b"epoch,stage\r\n1,0\r\n"


def test_a_torn_event_line_stays_apart_from_the_next(tmp_path):
    log = RunLog(tmp_path / "run")
    log.event("run_start")
    with open(log.events_path, "a") as f:
        f.write('{"time": "x", "event": "be')  # the kill
    log.event("resume", epoch=1)
    assert [e["event"] for e in read_events(log.dir)] == ["run_start", "resume"]
