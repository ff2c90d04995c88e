"""The smaller commands through the CLI: stats, models, augment-preview, runs, compare, sweep."""
import json

import pytest

from lowres.cli import main
from lowres.run.log import read_events, read_status
from lowres.train import loop
from run_configs import write_config


def test_stats_prints_exact_mean_and_std(tiny_data, capsys):
    assert main(["stats", str(tiny_data)]) == 0
    out = capsys.readouterr().out
    assert "96 labelled, 12 test; 16x16, 3 channel(s)" in out
    assert "classes: 4; images per class min 24, max 24" in out and "mean " in out
    # 10% of 24 images per class rounds to 2 each: 8 images, +-28.5 points (Wilson 95%).
    assert "data.val_fraction=0.1: val 8 images: +-28.5 points at 50% (Wilson 95%)" in out


def test_models_lists_every_model_with_size(capsys):
    assert main(["models", "--size", "32"]) == 0
    out = capsys.readouterr().out
    for name in ("resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "efficientnet_b7",
                 "swin_t", "resnet34_wide", "resnet8"):
        assert name in out
    assert "at 32x32" in out
    assert "wrn28_10" in out and "preact_resnet18" in out


def test_models_timm_lists_adapted_models_at_the_datasets_size(tiny_data, capsys):
    pytest.importorskip("timm")
    assert main(["models", "--timm", "resnet1?t", "--data", str(tiny_data)]) == 0
    out = capsys.readouterr().out
    assert "at 16x16" in out and "timm:resnet10t" in out and "13x13" in out  # k4 stem: 16 -> 13


def test_help_lists_export(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "export" in capsys.readouterr().out


def test_augment_preview_writes_a_png(tiny_data, tmp_path, capsys, monkeypatch):
    import matplotlib.axes

    shown = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, *a, **k: shown.append(text) or real(self, text, *a, **k))
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    out = tmp_path / "grid.png"
    assert main(["augment-preview", str(cfg), "--out", str(out), "--n", "3", "--draws", "2"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shown == ["original", "stage1 draw 1", "stage1 draw 2"]  # a title per column
    assert main(["augment-preview", str(cfg), "--stage", "4"]) == 2


def test_runs_and_compare(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 1}])
    for name, dropout in (("a", 0.0), ("b", 0.5)):
        assert main(["train", str(cfg), f"model.dropout={dropout}", "--run-dir",
                     str(tmp_path / "runs" / name)]) == 0
    capsys.readouterr()
    assert main(["runs", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert "finished" in table and "a" in table and "b" in table
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "runs" / "a"), str(tmp_path / "runs" / "b"), "--out",
                 str(out)]) == 0
    md = (out / "comparison.md").read_text()
    assert "model.dropout" in md and (out / "report.html").exists()
    # Same seed and data: the same val split, so the runs are paired image by image.
    from lowres.basics.intervals import paired_test
    from lowres.run.outcomes import read_val_outcomes

    a, b = (read_val_outcomes(tmp_path / "runs" / n) for n in ("a", "b"))
    assert a.split == b.split and a.images == b.images > 0
    r = paired_test(a.correct["last"], b.correct["last"])
    assert (f"| a | b | last epoch | {r.only_a} | {r.only_b} | {r.images} | "
            f"{r.difference_points:+.1f} | {r.p_value:.2g} |") in md
    assert "BEST.PT VAL (95%)" in table and "(" in table.splitlines()[1]


def test_sweep_interrupted_and_restarted_runs_each_point_once(tiny_data, tmp_path, monkeypatch,
                                                              capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 2}])
    sweep = tmp_path / "sweep"
    args = ["sweep", str(cfg), "--grid", "model.dropout=0.0,0.5", "--seeds", "0,1", "--out",
            str(sweep)]
    real_train = loop.train
    calls = []

    def pausing_train(*a, **kw):  # the third point is cut mid-way, like a Ctrl-C
        calls.append(kw.get("run_dir") or kw.get("resume"))
        if len(calls) == 3:
            kw["pause_after_steps"] = 2
        return real_train(*a, **kw)

    monkeypatch.setattr(loop, "train", pausing_train)
    assert main(args) == 130  # interrupted
    points = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "config.yaml").exists())
    assert len(points) == 3
    calls.clear()
    assert main(args) == 0
    assert len(calls) == 2  # the stopped point resumed, the fourth started; finished ones skipped
    points = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "config.yaml").exists())
    assert len(points) == 4
    for p in points:
        assert read_status(p)["state"] == "finished"
        assert [e["event"] for e in read_events(p)].count("run_start") == 1
    assert (sweep / "comparison" / "comparison.md").exists()
    assert "seed" in (sweep / "comparison" / "comparison.md").read_text().lower()
    assert json.loads((sweep / "sweep.json").read_text())
