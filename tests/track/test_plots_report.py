import time

from htmlcheck import parse, png_from_data_uri
from track_fakes import make_run

from lowres.track.plots import PLOT_FILES, write_run_plots
from lowres.track.report import write_run_report
from lowres.run.metrics import columns
from lowres.run.log import RunLog

PNG = b"\x89PNG\r\n\x1a\n"


def test_plots_no_metrics_file(tmp_path):
    RunLog(tmp_path / "r")
    assert write_run_plots(tmp_path / "r", strict=True) == []
    assert write_run_plots(tmp_path / "missing", strict=True) == []


def test_plots_header_only_metrics(tmp_path):
    run = tmp_path / "r"
    RunLog(run)
    (run / "metrics.csv").write_text(",".join(columns()) + "\n")
    assert write_run_plots(run, strict=True) == []


def test_plots_one_row(tmp_path):
    run = make_run(tmp_path / "r", epochs=1, drops=())
    paths = write_run_plots(run, strict=True)
    assert [p.name for p in paths] == list(PLOT_FILES)
    for p in paths:
        assert p.read_bytes()[:8] == PNG
    assert not list((run / "plots").glob(".*tmp*"))  # atomic writes leave no temp files


def test_plots_tolerate_empty_and_bad_cells(tmp_path):
    run = make_run(tmp_path / "r", epochs=3, drops=())
    with open(run / "metrics.csv", "a") as f:
        f.write("4,0,stage1,4,,,,,,,,,,\n")  # a row with nothing but the epoch
        f.write("5,0,stage1,5,0.1,nan,oops,1.0,0.5,,,,1,\n")
    assert len(write_run_plots(run, strict=True)) == 3


def test_plots_zero_lr_and_missing_columns(tmp_path):
    run = tmp_path / "r"
    log = RunLog(run)
    log.append_metrics({"epoch": 1, "stage": 0, "lr": 0.0, "train_loss": 2.0})
    log.append_metrics({"epoch": 2, "stage": 0, "lr": 0.0, "train_loss": 1.0})
    names = [p.name for p in write_run_plots(run, strict=True)]
    assert names == ["loss.png", "lr.png"]  # no accuracy at all: no accuracy plot


def test_plots_non_strict_never_raises(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path / "r", epochs=2)
    import lowres.track.plots as plots

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "save_figure", boom)
    assert write_run_plots(run) == []
    assert "disk full" in capsys.readouterr().err


def test_plots_400_epochs_fast(tmp_path):
    run = make_run(tmp_path / "r", epochs=400, stage_split=300, drops=(50, 120, 310), ema=True)
    write_run_plots(run, strict=True)  # warm up the imports
    t = time.perf_counter()
    assert len(write_run_plots(run, strict=True)) == 3
    assert time.perf_counter() - t < 2.0  # about 0.3 s alone; slack for shared cores


def test_report_structure_and_embedded_images(tmp_path):
    run = make_run(tmp_path / "my-run", epochs=12, ema=True)
    write_run_plots(run, strict=True)
    path = write_run_report(run, strict=True)
    assert path == run / "report.html"
    text = path.read_text()
    s = parse(text)
    assert "run" in s.title
    assert len(s.imgs) == 3
    for uri in s.imgs:
        png_from_data_uri(uri)
    for heading in ("Summary", "Curves", "Metrics per epoch", "Events", "Config", "Environment"):
        assert heading in s.h2
    body = "".join(s.text)
    assert "finished" in body
    assert "stage2" in body and "lr_drop" in body and "randaugment" in body  # stages, events, config
    assert "torch" in body  # env
    assert s.tags["tr"] >= 12  # every epoch shown
    assert not list(run.glob(".report.html.tmp*"))


def test_report_draws_missing_plots_and_shows_last_rows(tmp_path):
    run = make_run(tmp_path / "r", epochs=60, drops=(20,))
    path = write_run_report(run, strict=True)  # no plots yet: drawn on demand
    s = parse(path.read_text())
    assert len(s.imgs) == 3
    body = "".join(s.text)
    assert "last 40 of 60 epochs" in body


def test_report_empty_run_and_killed_run(tmp_path):
    run = tmp_path / "r"
    log = RunLog(run)
    (run / "config.yaml").write_text("seed: 0\n")
    log.set_status("running", pid=999_999_999)  # a pid that cannot be alive
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    s = parse(write_run_report(run, strict=True).read_text())
    body = "".join(s.text)
    assert "no epochs yet" in body and "stopped (resumable)" in body
    assert s.imgs == []


def test_report_escapes_html(tmp_path):
    run = make_run(tmp_path / "r", epochs=2)
    RunLog(run).event("warning", message="<script>alert(1)</script> & more")
    s = parse(write_run_report(run, strict=True).read_text())
    assert "<script>alert(1)</script> & more" in "".join(s.text)
