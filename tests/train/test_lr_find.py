"""The LR range test (train/lr_find.py): `lowres lr-find`, `lowres.lr_find` and
`optimizer.lr: find` in a stage, which must leave the run reproducible and resumable."""
import io
import math

import pytest
import torch
import yaml

import lowres
from run_configs import error_lines, write_config
from lowres.cli import main
from lowres.run import checkpoint
from lowres.run.log import read_events, read_metrics
from lowres.train import lr_find
from lowres.train.loop import train

TIMING = {"images_per_s", "seconds", "elapsed"}


def test_the_range_test_grows_the_lr_and_suggests_one_inside_the_range(tiny_data, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    rng_before = torch.get_rng_state()
    result = lowres.lr_find(str(cfg), "train.threads=1", start=1e-4, end=10, steps=24,
                            plot=tmp_path / "lr.png")
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's stream is untouched
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) <= 24
    assert all(a < b for a, b in zip(result.lrs, result.lrs[1:]))
    assert result.lrs[0] == pytest.approx(1e-4)
    kept = result.losses[:-1] if result.stopped else result.losses
    assert kept and all(math.isfinite(v) for v in kept)
    assert result.rule == "valley" and set(result.suggestions) == {"valley", "steep", "minimum"}
    assert result.suggestion == result.suggestions["valley"]
    assert 1e-4 <= result.suggestion <= 10
    assert result.plot_path == tmp_path / "lr.png" and result.plot_path.stat().st_size > 0
    assert result.line().startswith(f"suggested lr {result.suggestion:g}: ")
    assert result.plot() is not None  # a Figure outside Jupyter
    assert not (tmp_path / "runs").exists()  # no run directory
    again = lowres.lr_find(str(cfg), "train.threads=1", start=1e-4, end=10, steps=24, plot=None)
    assert again.losses == result.losses and again.plot_path is None  # deterministic


def test_the_rules_on_a_known_curve():
    lrs = lr_find.schedule(1e-3, 1.0, 31)
    losses = [3.0] * 10 + [3.0 - 0.1 * i for i in range(1, 16)] + [2.0, 2.5, 3.0, 4.0, 6.0, 9.0]
    found = lr_find.suggest(lrs, losses, 31)
    # The longest descent: points 9..24 (the flat start counts as its first point).
    assert lrs[9] < found["valley"] < lrs[24]
    assert found["minimum"] == lr_find.round_lr(lrs[24] / 10)
    assert lr_find.round_lr(0.012345) == 0.012


def test_the_cli_prints_one_suggestion_line(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    assert main(["lr-find", str(cfg), "train.threads=1", "--steps", "12", "--start", "1e-3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    suggested = [line for line in lines if line.startswith("suggested lr ")]
    assert len(suggested) == 1 and "(valley rule)" in suggested[0]
    assert (tmp_path / "lr_find.png").is_file()  # the default --out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args,words", [
    (["--start", "1", "--end", "0.1"], "must be lower than --end"),
    (["--start", "1e30", "--end", "1e35", "--steps", "20"], "from 1e+30 to 1e+35"),
])
def test_a_bad_range_is_one_line(tiny_data, tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    assert main(["lr-find", str(cfg), "train.threads=1", *args]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and words in lines[0] and "lower" in lines[0], lines


def test_lr_find_in_the_config_is_accepted_and_described():
    from lowres import config as config_mod

    cfg = config_mod.build({"data": {"root": "x"}}, ["stages.0.optimizer.lr=find"])
    assert cfg.stages[0].optimizer.lr == "find"
    for bad in ("0", "-1", "fnd"):
        with pytest.raises(lowres.ConfigError, match="stages.0.optimizer.lr"):
            config_mod.build({"data": {"root": "x"}}, [f"stages.0.optimizer.lr={bad}"])
    from lowres.cli.options import option_lines

    text = "\n".join(option_lines("stages.N.optimizer"))
    assert "or find" in text


def _stages(lr1, lr2):
    augment = [{"op": "hflip", "p": 0.5}, {"op": "erasing", "p": 0.5, "ratio": [1, 1]}]
    return [{"epochs": 2, "optimizer": {"lr": lr1}, "scheduler": {"name": "cosine"},
             "augment": augment},
            {"epochs": 1, "reset_optimizer": True, "optimizer": {"lr": lr2},
             "scheduler": {"name": "constant"}, "augment": augment}]


def _found(run_dir):
    return [e for e in read_events(run_dir) if e["event"] == "lr_find"]


def test_lr_find_in_a_stage_is_recorded_resumes_without_rerunning_and_changes_nothing_else(
        tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=_stages("find", "find"))
    straight = tmp_path / "straight"
    assert train(cfg, run_dir=straight).state == "finished"
    events = _found(straight)
    assert [e["stage"] for e in events] == [0, 1] and all(e["rule"] == "valley" for e in events)
    saved = yaml.safe_load((straight / "config.yaml").read_text())
    lrs = [s["optimizer"]["lr"] for s in saved["stages"]]
    assert lrs == [e["lr"] for e in events] and all(isinstance(lr, float) for lr in lrs)
    assert checkpoint.load(straight / "checkpoints" / "last.pt")["config"]["stages"][0][
        "optimizer"]["lr"] == lrs[0]

    paused = tmp_path / "paused"
    assert train(cfg, run_dir=paused, pause_after_epochs=1).state == "stopped"  # in stage 1
    assert [e["stage"] for e in _found(paused)] == [0]
    assert train(None, resume=paused, pause_after_epochs=1).state == "stopped"  # at the boundary
    assert [e["stage"] for e in _found(paused)] == [0]
    assert train(None, resume=paused).state == "finished"
    assert [(e["stage"], e["lr"]) for e in _found(paused)] == [(0, lrs[0]), (1, lrs[1])]

    # The same numbers written in the config: the same run, bit for bit (the test consumed
    # none of training's random draws and left the model as it was).
    fixed = write_config(tmp_path / "f.yaml", tiny_data, stages=_stages(*lrs))
    plain = tmp_path / "plain"
    assert train(fixed, run_dir=plain).state == "finished"
    assert _found(plain) == []

    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    a = checkpoint.load(straight / "checkpoints" / "last.pt")
    for other in (paused, plain):
        b = checkpoint.load(other / "checkpoints" / "last.pt")
        for key in a["model"]:
            assert torch.equal(a["model"][key], b["model"][key]), (other, key)
        assert strip(read_metrics(straight)) == strip(read_metrics(other))


def test_a_dry_run_says_the_lr_will_be_found(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=_stages("find", 0.01))
    out = io.StringIO()
    assert train(cfg, dry_run=True, out=out) is None
    assert "chosen by an LR range test at the stage's start" in out.getvalue()
    assert "lr find" in out.getvalue()
