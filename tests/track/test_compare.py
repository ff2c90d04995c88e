import statistics

import pytest
from htmlcheck import parse, png_from_data_uri
from track_fakes import config, make_run

from lowres.errors import LowresError
from lowres.track.compare import compare_runs, run_labels, spread_verdict
from lowres.track.configdiff import differing_keys, flatten_config, seed_groups


def test_flatten_config():
    flat = flatten_config({"a": 1, "stages": [{"optimizer": {"lr": 0.1}, "augment": []}],
                           "b": {}})
    assert flat == {"a": 1, "stages.0.optimizer.lr": 0.1, "stages.0.augment": [], "b": {}}


def test_differing_keys():
    a = config()
    b = config(**{"stages.0.optimizer.lr": 0.2, "name": "other", "seed": 0})
    c = config(**{"model.init": "default"})
    assert differing_keys([a, a]) == []
    assert differing_keys([a, b]) == ["stages.0.optimizer.lr"]
    assert differing_keys([a, b, c]) == ["model.init", "stages.0.optimizer.lr"]
    assert differing_keys([a, b], ignore=()) == ["name", "stages.0.optimizer.lr"]


def test_differing_keys_absent_and_types():
    a = config()
    b = config()
    b["stages"][1]["augment"] = b["stages"][1]["augment"][:1]  # one op fewer
    b["model"]["extra"] = True
    keys = differing_keys([a, b])
    assert "stages.1.augment.1.op" in keys and "stages.1.augment.1.num_ops" in keys
    assert "model.extra" in keys
    assert differing_keys([config(seed=1), config(seed=1.0)]) == ["seed"]


def test_seed_groups():
    cfgs = [config(seed=0), config(seed=1), config(**{"model.dropout": 0.5, "seed": 0}),
            config(seed=2, name="x"), config(**{"model.dropout": 0.5, "seed": 1})]
    assert seed_groups(cfgs) == [[0, 1, 3], [2, 4]]


def test_spread_verdict():
    assert spread_verdict(80.0, 0.5, 80.4, 0.9) == (
        "difference 0.40% <= spread 0.90%: not distinguishable with these seeds")
    assert "larger than the seed spread" in spread_verdict(80.0, 0.5, 82.0, 0.3)
    assert "cannot tell" in spread_verdict(80.0, None, 82.0, 0.3)


def test_run_labels():
    from pathlib import Path
    assert run_labels([Path("/x/a/r"), Path("/x/b/r"), Path("/x/c")]) == ["a/r", "b/r", "c"]


def test_compare_two_runs(tmp_path):
    a = make_run(tmp_path / "default-init", epochs=8, cfg=config(**{"model.init": "default"}))
    b = make_run(tmp_path / "he-init", epochs=10, acc_offset=0.05, drops=(4, 8))
    report = compare_runs([a, b], tmp_path / "cmp")
    assert report == tmp_path / "cmp" / "report.html"
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| model.init | default | he_normal |" in md
    assert "name" not in [line.split("|")[1].strip() for line in md.splitlines()
                          if line.startswith("| name")]
    assert "| he-init | 95.00% | 15" not in md  # only 10 epochs
    assert "| default-init | 58.00% | 8 | 58.00% | 8 | 0:00:20 | 1004 | finished |" in md
    for name in ("compare_loss.png", "compare_accuracy.png", "compare_lr.png"):
        assert (tmp_path / "cmp" / name).read_bytes()[:4] == b"\x89PNG"
    s = parse(report.read_text())
    assert len(s.imgs) == 3 and all(png_from_data_uri(u) for u in s.imgs)
    assert "model.init" in "".join(s.text)


def test_compare_expands_directories_and_rejects_non_runs(tmp_path):
    make_run(tmp_path / "sw" / "p1", epochs=2)
    make_run(tmp_path / "sw" / "p2", epochs=2, cfg=config(seed=3))
    compare_runs([tmp_path / "sw"], tmp_path / "out")
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "| seed | 0 | 3 |" in md
    with pytest.raises(LowresError, match="not a run directory"):
        compare_runs([tmp_path / "nothing"], tmp_path / "out2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LowresError, match="not a run directory"):
        compare_runs([tmp_path / "empty"], tmp_path / "out3")


def test_compare_runs_without_metrics(tmp_path):
    a = make_run(tmp_path / "a", epochs=0)
    b = make_run(tmp_path / "b", epochs=1)
    parse(compare_runs([a, b], tmp_path / "cmp").read_text())


def test_group_seeds(tmp_path):
    runs, bests = [], {0.5: [], 0.8: []}
    for dropout, offsets in ((0.5, (0.0, 0.01, 0.03)), (0.8, (0.002, 0.012))):
        for seed, off in enumerate(offsets):
            cfg = config(**{"model.dropout": dropout, "seed": seed, "name": f"d{dropout}s{seed}"})
            runs.append(make_run(tmp_path / f"d{dropout}_s{seed}", epochs=5, cfg=cfg,
                                 acc_offset=off))
            bests[dropout].append((0.1 + 0.3 + off) * 100)
    compare_runs(runs, tmp_path / "cmp", group_seeds=True)
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    m5, s5 = statistics.fmean(bests[0.5]), statistics.stdev(bests[0.5])
    m8, s8 = statistics.fmean(bests[0.8]), statistics.stdev(bests[0.8])
    assert f"| model.dropout=0.5 | 3 | 0, 1, 2 | {m5:.2f}% | {s5:.2f}% |" in md
    assert f"| model.dropout=0.8 | 2 | 0, 1 | {m8:.2f}% | {s8:.2f}% |" in md
    diff, spread = abs(m5 - m8), max(s5, s8)
    assert diff < spread
    assert (f"model.dropout=0.5 vs model.dropout=0.8: difference {diff:.2f}% <= spread "
            f"{spread:.2f}%: not distinguishable with these seeds") in md
    assert "rule:" in md
    body = "".join(parse((tmp_path / "cmp" / "report.html").read_text()).text)
    assert "not distinguishable with these seeds" in body


def test_group_seeds_draw_bands_and_report_the_mean_with_its_interval(tmp_path):
    from lowres.basics.intervals import mean_interval
    from lowres.track.overlay import epoch_stats
    from lowres.run.read import load_run

    runs = []
    for lr in (0.1, 0.05):
        for seed, off in enumerate((0.0, 0.02, 0.04)):
            cfg = config(**{"stages.0.optimizer.lr": lr, "seed": seed, "name": f"lr{lr}s{seed}"})
            runs.append(make_run(tmp_path / f"lr{lr}_s{seed}", epochs=4, cfg=cfg, acc_offset=off))
    compare_runs(runs, tmp_path / "cmp", group_seeds=True)
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    mean, low, high = mean_interval([(0.1 + 0.24 + off) * 100 for off in (0.0, 0.02, 0.04)])
    assert f"{mean:.2f}% ({low:.1f}-{high:.1f})" in md
    # The config diff has one column per group and a row of seeds, not one column per run.
    assert "| config key | stages.0.optimizer.lr=0.1 | stages.0.optimizer.lr=0.05 |" in md
    assert "| seed | 0, 1, 2 | 0, 1, 2 |" in md
    assert "no shared val split" in md  # fake runs have no per-image outcomes
    stats = epoch_stats([load_run(r) for r in runs[:3]], "val_acc")
    assert stats[0][:4] == pytest.approx((1.0, 0.18, 0.16, 0.20))
    assert (tmp_path / "cmp" / "compare_accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_many_runs_list_config_differences_one_row_per_run(tmp_path):
    runs = [make_run(tmp_path / f"r{i}", epochs=2, cfg=config(**{"model.dropout": i / 10}))
            for i in range(8)]
    compare_runs(runs, tmp_path / "cmp")
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| run | model.dropout |" in md and "| r7 | 0.7 |" in md
