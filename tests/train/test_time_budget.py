"""A plan that fits a time budget: the scaling rule (pure), then whole runs with a fake clock."""
from __future__ import annotations

import pytest

from lowres.errors import ConfigError
from lowres.train.time_budget import TimeBudget, fit_epochs


@pytest.mark.parametrize("planned,done,stage,epoch_s,left,in_epoch,expected", [
    ([6, 3, 1], [0, 0, 0], 0, 10, 200, True, [12, 6, 2]),   # room for 20: twice the plan
    ([6, 3, 1], [0, 0, 0], 0, 10, 50, True, [3, 1, 1]),     # room for 5: proportions, >= 1 each
    ([6, 3, 1], [0, 0, 0], 0, 10, 25, True, [1, 1, 1]),     # too little: the minimum
    ([6, 3, 1], [6, 0, 0], 1, 10, 30, False, [6, 2, 1]),    # stage 0 over: it keeps its 6
    ([6, 3, 1], [4, 0, 0], 0, 10, 0, False, [4, 1, 1]),     # out of time: the stage ends now
    ([26, 13, 1], [0, 0, 0], 0, 4.0, 286, True, [46, 23, 2]),
])
def test_epochs_fit_the_budget_in_proportion(planned, done, stage, epoch_s, left, in_epoch, expected):
    assert fit_epochs(planned, done, stage, epoch_s, left, in_epoch) == expected


def test_the_plan_never_asks_more_than_the_budget_affords_once_the_minimum_fits():
    for left in range(30, 400, 7):
        epochs = fit_epochs([6, 3, 1], [0, 0, 0], 0, 10.0, left, in_epoch=True)
        assert sum(epochs) <= max(left // 10, 3) and all(e >= 1 for e in epochs)


def test_a_budget_too_short_for_one_epoch_of_each_stage_is_one_line():
    budget = TimeBudget(seconds=20.0, planned=[6, 3, 1])
    with pytest.raises(ConfigError, match=r"^train.budget=20s is too short for one epoch of each "
                                          r"of its 3 stages \(about 30s .*\)"):
        budget.check_fits_one_epoch(10.0, 3)
    budget.check_fits_one_epoch(5.0, 3)  # fits


def test_the_estimate_follows_the_measured_epochs_and_survives_a_checkpoint():
    budget = TimeBudget(seconds=100.0, planned=[2, 1])
    budget.epoch_seconds = budget.probe_estimate(0.1, steps_per_epoch=50, val_images=300, eval_batch=100)
    assert budget.epoch_seconds == pytest.approx(0.1 * (50 + 1))
    budget.measured(8.0)
    budget.measured(12.0)
    assert budget.spent == 20.0 and budget.epoch_seconds == pytest.approx(10.0)
    for wall in (1.0, 1.0, 1.0, 1.0, 1.0):  # a cheaper stage: the estimate follows it
        budget.measured(wall)
    assert budget.epoch_seconds == pytest.approx(1.0)
    again = TimeBudget.from_state(budget.state_dict())
    assert again == budget
    assert again.plan([2, 0], 1) == fit_epochs([2, 1], [2, 0], 1, 1.0, 100.0 - 25.0)


# ---------------------------------------------------------------- whole runs, a fake clock
import json  # noqa: E402

import torch  # noqa: E402
import yaml  # noqa: E402
from run_configs import error_lines, write_config  # noqa: E402

from lowres.cli.main import main  # noqa: E402
from lowres.run import checkpoint  # noqa: E402
from lowres.train import time_budget  # noqa: E402
from lowres.train.loop import train  # noqa: E402

STAGES = [{"epochs": 2, "scheduler": {"name": "cosine"}, "augment": [{"op": "hflip", "p": 0.5}]},
          {"epochs": 1, "scheduler": {"name": "constant"}, "augment": []}]


@pytest.fixture
def one_second_epochs(monkeypatch):
    """Every epoch costs exactly one second, as the probe and the clock see it."""
    monkeypatch.setattr(time_budget, "probe_step_seconds", lambda cfg, data, policy: 0.0)
    monkeypatch.setattr(TimeBudget, "probe_estimate", lambda self, *a: 1.0)
    monkeypatch.setattr(TimeBudget, "lap", lambda self: 1.0)


def _budget_events(run_dir):
    return [e for e in map(json.loads, (run_dir / "events.jsonl").open()) if e["event"] == "budget"]


def test_a_budget_scales_every_stage_and_the_run_fits_it(tiny_data, tmp_path, one_second_epochs):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=STAGES)
    result = train(cfg, ["train.budget=6s"], run_dir=tmp_path / "run")
    assert result.state == "finished" and result.epochs == 6  # 2+1 planned, scaled to 4+2
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert [s["epochs"] for s in saved["stages"]] == [4, 2]
    assert saved["train"]["budget"] == "6s"
    first = _budget_events(tmp_path / "run")[0]
    assert first["planned"] == [2, 1] and first["epochs"] == [4, 2]


def test_a_budgeted_run_paused_and_resumed_spends_the_same_budget_and_ends_bitwise_equal(
        tiny_data, tmp_path, one_second_epochs):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=STAGES)
    assert train(cfg, ["train.budget=6s"], run_dir=tmp_path / "straight").state == "finished"
    cut = tmp_path / "cut"
    assert train(cfg, ["train.budget=6s"], run_dir=cut, pause_after_epochs=3).state == "stopped"
    state = checkpoint.load(cut / "checkpoints" / "last.pt")
    assert state["budget"]["spent"] == 3.0  # the plan's total, not this session's
    assert train(None, resume=cut).state == "finished"
    a = checkpoint.load(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = checkpoint.load(cut / "checkpoints" / "last.pt")
    assert a["position"] == b["position"] and b["budget"]["spent"] == 6.0
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_a_slower_machine_shrinks_the_plan_mid_run(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(time_budget, "probe_step_seconds", lambda cfg, data, policy: 0.0)
    monkeypatch.setattr(TimeBudget, "probe_estimate", lambda self, *a: 1.0)
    monkeypatch.setattr(TimeBudget, "lap", lambda self: 2.0)  # twice the probe's estimate
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=STAGES)
    result = train(cfg, ["train.budget=12s"], run_dir=tmp_path / "run")
    # planned 8+4 on the probe; at 2 s an epoch, 6 fit: the stages end at 4+2
    assert result.state == "finished" and result.epochs == 6
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert [s["epochs"] for s in saved["stages"]] == [4, 2]
    assert _budget_events(tmp_path / "run")[-1]["spent"] <= 12.0


def test_a_budget_too_short_is_one_line_and_leaves_nothing(tiny_data, tmp_path, capsys,
                                                            one_second_epochs):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=STAGES)
    assert main(["train", str(cfg), "--budget", "1s", "--run-dir", str(tmp_path / "run")]) != 0
    lines = error_lines(capsys)
    assert len(lines) == 1 and "train.budget=1s is too short for one epoch of each of its 2 stages" \
        in lines[0]
    assert not (tmp_path / "run").exists()
    assert main(["train", str(cfg), "--budget", "soon"]) != 0
    assert "config key 'train.budget': expected a duration" in error_lines(capsys)[0]
