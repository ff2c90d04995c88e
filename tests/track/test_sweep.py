import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from htmlcheck import parse, png_from_data_uri
from track_fakes import BASE_CONFIG, make_run

from lowres.config import apply_override, parse_override
from lowres.errors import ConfigError, LowresError
from lowres.run.read import run_state
from lowres.sweep.points import plan_sweep, run_sweep
from lowres.config.tree import short_keys
from lowres.sweep.grid import parse_grid

GRID = ["model.dropout=0.5,0.8"]


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(BASE_CONFIG, sort_keys=False))
    return path


def resolve(config_path, overrides):
    tree = yaml.safe_load(Path(config_path).read_text())
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(tree, parts, value)
    return tree


class FakeTrain:
    """Writes a run directory like the trainer; can be told to 'crash' at the k-th call."""

    def __init__(self, interrupt_at=None, fail_names=()):
        self.calls = []
        self.interrupt_at = interrupt_at
        self.fail_names = set(fail_names)

    def __call__(self, config_path, overrides, run_dir, resume):
        self.calls.append((Path(run_dir).name, resume, list(overrides)))
        cfg = resolve(config_path, overrides)
        offset = 0.01 * cfg["seed"] + (0.02 if cfg["model"]["dropout"] == 0.5 else 0.0)
        if Path(run_dir).name in self.fail_names:
            raise RuntimeError("CUDA out of memory (fake)")
        if len(self.calls) == self.interrupt_at:
            make_run(run_dir, epochs=2, cfg=cfg, state="stopped", last_pt=True,
                     acc_offset=offset)
            raise KeyboardInterrupt
        if resume:
            assert (Path(run_dir) / "checkpoints" / "last.pt").is_file()
            assert run_state(run_dir) == "stopped (resumable)"
            for name in ("metrics.csv", "events.jsonl"):
                (Path(run_dir) / name).unlink()  # the fake 'continues' by rewriting
        make_run(run_dir, epochs=5, cfg=cfg, state="finished", acc_offset=offset)


def test_parse_grid_types():
    axes = parse_grid(["a.b=0.1,true,text,1e-4,[1,2],'x,y',null"])
    assert axes[0][0] == "a.b"
    assert [v for _, v in axes[0][1]] == [0.1, True, "text", "1e-4", [1, 2], "x,y", None]


def test_grid_values_are_a_yaml_flow_list():
    axes = parse_grid(["a=0.1, 0.05", "b=[1, 2],{x: 1},\"p, q\""])
    assert axes == [("a", [("0.1", 0.1), ("0.05", 0.05)]),
                    ("b", [("[1, 2]", [1, 2]), ("{x: 1}", {"x": 1}), ('"p, q"', "p, q")])]


def test_a_bracketed_list_is_the_list_of_values():
    """`key=[a,b]` is the two values a and b, as `key=a,b` (not one value, the list [a, b]);
    a list-valued key takes a list of lists, or lists side by side, or a grid file."""
    assert parse_grid(["model.dropout=[0.0,0.2]"]) == parse_grid(["model.dropout=0.0,0.2"]) == [
        ("model.dropout", [("0.0", 0.0), ("0.2", 0.2)])]
    assert parse_grid(["model.dropout= [0.0, 0.2] "])[0][1] == [("0.0", 0.0), ("0.2", 0.2)]
    pts = plan_sweep("x.yaml", ["model.dropout=[0.0,0.2]"], None)
    assert [p.overrides for p in pts] == [["model.dropout=0.0"], ["model.dropout=0.2"]]
    assert [p.name for p in pts] == ["dropout0.0", "dropout0.2"]
    milestones = [("[10, 20]", [10, 20]), ("[30]", [30])]
    key = "stages.0.scheduler.milestones"
    assert parse_grid([f"{key}=[[10, 20], [30]]"]) == parse_grid([f"{key}=[10, 20], [30]"]) == [
        (key, milestones)]
    assert parse_grid([f"{key}=[[10, 20]]"]) == [(key, [("[10, 20]", [10, 20])])]  # one list value
    pts = plan_sweep("x.yaml", [f"{key}=[[10,20],[30]]"], None)
    assert [p.values[key] for p in pts] == [[10, 20], [30]]
    for p in pts:  # each override reads back as the list
        assert parse_override(p.overrides[0])[1] == p.values[key]


@pytest.mark.parametrize("bad", ["model.dropout=[0.0,0.2", "model.dropout=[]", "model.dropout=[0.1,0.1]",
                                 "model.dropout=[0.0,[0.2]"])
def test_a_malformed_bracket_is_one_line(bad):
    with pytest.raises(ConfigError) as info:
        plan_sweep("x.yaml", [bad], None)
    assert "\n" not in str(info.value) and "model.dropout" in str(info.value)


def test_grid_file(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("stages.0.optimizer.lr: [0.1, 0.05]\nmodel.name: ['a,b', resnet18]\n")
    pts = plan_sweep("x.yaml", ["model.dropout=0.5"], None, grid_file=grid)
    assert [p.overrides for p in pts] == [
        ["model.dropout=0.5", "stages.0.optimizer.lr=0.1", "model.name=a,b"],
        ["model.dropout=0.5", "stages.0.optimizer.lr=0.1", "model.name=resnet18"],
        ["model.dropout=0.5", "stages.0.optimizer.lr=0.05", "model.name=a,b"],
        ["model.dropout=0.5", "stages.0.optimizer.lr=0.05", "model.name=resnet18"]]
    for p in pts:  # each override reads back as the value in the file
        for text in p.overrides:
            key, value = parse_override(text)
            assert value == p.values.get(".".join(key), value)
    assert pts[0].values["model.name"] == "a,b"
    with pytest.raises(ConfigError, match="twice"):
        plan_sweep("x.yaml", ["model.name=x"], None, grid_file=grid)
    grid.write_text("lr: 0.1\n")
    with pytest.raises(ConfigError, match="list of values"):
        plan_sweep("x.yaml", [], None, grid_file=grid)


@pytest.mark.parametrize("bad", ["model.dropout", "=1,2", "a..b=1", "a=", "a=1,,2", "a=[1,2",
                                 "a=1,1", "a={x: [}"])
def test_bad_grid_is_one_line_config_error(bad):
    with pytest.raises(ConfigError) as info:
        plan_sweep("x.yaml", [bad], None)
    assert "\n" not in str(info.value)


def test_grid_key_twice_and_seed_conflict():
    with pytest.raises(ConfigError, match="twice"):
        plan_sweep("x.yaml", ["a=1", "a=2"], None)
    with pytest.raises(ConfigError, match="seed"):
        plan_sweep("x.yaml", ["seed=1,2"], [0, 1])


def test_plan_names_and_overrides():
    pts = plan_sweep("x.yaml", ["model.dropout=0.5,0.8", "stages.0.optimizer.lr=0.1,0.2"],
                     [0, 1])
    assert len(pts) == 8
    assert pts[0].name == "dropout0.5_lr0.1_seed0"
    assert pts[0].overrides == ["model.dropout=0.5", "stages.0.optimizer.lr=0.1", "seed=0"]
    assert pts[0].values == {"model.dropout": 0.5, "stages.0.optimizer.lr": 0.1}
    assert pts[-1].name == "dropout0.8_lr0.2_seed1"
    assert len({p.name for p in pts}) == 8
    again = plan_sweep("x.yaml", ["model.dropout=0.5,0.8", "stages.0.optimizer.lr=0.1,0.2"],
                       [0, 1])
    assert [p.name for p in again] == [p.name for p in pts]
    assert [p.name for p in plan_sweep("x.yaml", [], None)] == ["base"]


def test_plan_names_filesystem_safe_and_unique():
    pts = plan_sweep("x.yaml", ["model.name=a b,a/b,'a:b'", "train.flag=true"], None)
    for p in pts:
        assert re.fullmatch(r"[A-Za-z0-9._+-]+", p.name), p.name
    assert len({p.name for p in pts}) == 3
    long = plan_sweep("x.yaml", ["k=" + "x" * 300], None)[0].name
    assert len(long) <= 120
    assert short_keys(["stages.0.optimizer.lr", "stages.1.optimizer.lr", "model.dropout"]) == {
        "stages.0.optimizer.lr": "0-optimizer-lr", "stages.1.optimizer.lr": "1-optimizer-lr",
        "model.dropout": "dropout"}


def test_sweep_interrupted_and_restarted(tmp_path, base):
    sweep_dir = tmp_path / "sw"
    fake = FakeTrain(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(base, GRID, [0, 1], sweep_dir, fake, extra_overrides=["train.batch_size=64"],
                  check_config=False)
    plan = json.loads((sweep_dir / "sweep.json").read_text())
    names = [p["name"] for p in plan["points"]]
    assert names == ["dropout0.5_seed0", "dropout0.5_seed1", "dropout0.8_seed0",
                     "dropout0.8_seed1"]
    assert not (sweep_dir / "comparison").exists()
    assert [c[:2] for c in fake.calls] == [("dropout0.5_seed0", False),
                                            ("dropout0.5_seed1", False),
                                            ("dropout0.8_seed0", False)]
    # train_fn got the extra overrides first, then the point's, then the run name
    assert fake.calls[0][2] == ["train.batch_size=64", "model.dropout=0.5", "seed=0",
                                "name='dropout0.5_seed0'"]

    again = FakeTrain()
    out = run_sweep(base, GRID, [0, 1], sweep_dir, again,
                    extra_overrides=["train.batch_size=64"], check_config=False)
    assert out.sweep_dir == sweep_dir and out.stopped_at is None
    assert [c[:2] for c in again.calls] == [("dropout0.8_seed0", True),
                                             ("dropout0.8_seed1", False)]
    per_point = Counter(c[0] for c in fake.calls[:2] + again.calls)
    assert per_point == {n: 1 for n in names}
    for n in names:
        assert run_state(sweep_dir / n) == "finished"
        cfg = yaml.safe_load((sweep_dir / n / "config.yaml").read_text())
        assert cfg["name"] == n and cfg["train"]["batch_size"] == 64

    md = (sweep_dir / "comparison" / "comparison.md").read_text()
    assert "| model.dropout=0.5 | 2 | 0, 1 |" in md
    assert "model.dropout=0.5 vs model.dropout=0.8: difference 2.00% > spread 0.71%" in md
    s = parse((sweep_dir / "comparison" / "report.html").read_text())
    assert len(s.imgs) == 3 and all(png_from_data_uri(u) for u in s.imgs)

    # a third run does nothing but compare again
    third = FakeTrain()
    run_sweep(base, GRID, [0, 1], sweep_dir, third, extra_overrides=["train.batch_size=64"],
              check_config=False)
    assert third.calls == []


def test_sweep_without_seeds_fresh_start_sets_old_dir_aside(tmp_path, base):
    sweep_dir = tmp_path / "sw"
    stale = sweep_dir / "dropout0.5"
    make_run(stale, epochs=1, state="failed", last_pt=False)  # no checkpoint: start over
    fake = FakeTrain()
    run_sweep(base, GRID, None, sweep_dir, fake, check_config=False)
    assert [c[:2] for c in fake.calls] == [("dropout0.5", False), ("dropout0.8", False)]
    assert (sweep_dir / "dropout0.5.attempt1" / "metrics.csv").is_file()
    assert run_state(stale) == "finished"
    md = (sweep_dir / "comparison" / "comparison.md").read_text()
    assert "Seed groups" not in md and "| model.dropout | 0.5 | 0.8 |" in md


def test_sweep_failed_point_does_not_stop_others(tmp_path, base, capsys):
    fake = FakeTrain(fail_names={"dropout0.5"})
    with pytest.raises(LowresError, match="dropout0.5"):
        run_sweep(base, GRID, None, tmp_path / "sw", fake, check_config=False)
    assert [c[0] for c in fake.calls] == ["dropout0.5", "dropout0.8"]
    assert "CUDA out of memory (fake)" in capsys.readouterr().err
    assert (tmp_path / "sw" / "comparison" / "report.html").is_file()


def test_sweep_checks_every_point_before_training(tmp_path, base, monkeypatch):
    import lowres.config as config_mod

    def fake_load(path, overrides, require_root=True):
        if "model.dropout=2" in overrides:
            raise ConfigError("config key 'model.dropout': must be in [0, 0.99], got 2")

    monkeypatch.setattr(config_mod, "load", fake_load)
    fake = FakeTrain()
    with pytest.raises(ConfigError, match="sweep point dropout2: config key 'model.dropout'"):
        run_sweep(base, ["model.dropout=0.5,2"], None, tmp_path / "sw", fake)
    assert fake.calls == []


def test_sweep_check_with_real_config(tmp_path):
    pytest.importorskip("lowres.augment")
    from lowres import augment
    if not hasattr(augment, "validate_spec"):
        pytest.skip("lowres.augment.validate_spec not there yet")
    base = tmp_path / "base.yaml"
    base.write_text("data:\n  root: /nowhere\n")
    with pytest.raises(ConfigError, match="sweep point"):
        run_sweep(base, ["model.dropout=0.5,7"], None, tmp_path / "sw", FakeTrain())
    with pytest.raises(ConfigError, match="sweep point"):
        run_sweep(base, ["model.dropoutt=0.5"], None, tmp_path / "sw", FakeTrain())


def test_trainer_that_catches_the_signal_stops_the_sweep(tmp_path, base):
    calls = []

    def train_fn(config_path, overrides, run_dir, resume):
        calls.append(Path(run_dir).name)
        make_run(run_dir, epochs=2, state="stopped", last_pt=True)  # saved, then returned

    result = run_sweep(base, GRID, None, tmp_path / "sw", train_fn, check_config=False)
    assert calls == ["dropout0.5"] and result.stopped_at == "dropout0.5"
    assert not (tmp_path / "sw" / "comparison").exists()  # compared once all points ran
