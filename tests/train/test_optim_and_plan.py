import math

import pytest
import torch

from lowres.config import OptimizerConfig, SchedulerConfig, StageConfig, StopConfig
from lowres.train.optim import build_optimizer, param_groups
from lowres.train.schedules import Schedule
from lowres.train.schedules import StopRule


def sched(name, epochs=10, spe=10, lr=1.0, **kw):
    return Schedule(SchedulerConfig(name=name, **kw), lr, spe, epochs)


def test_step_and_multistep_drop_and_report_drops():
    s = sched("step", step_epochs=3, gamma=0.1)
    assert s.lr_at(29) == 1.0 and s.lr_at(30) == pytest.approx(0.1)
    drops = [s.epoch_end({}) for _ in range(6)]
    assert drops == [False, False, True, False, False, True]
    m = sched("multistep", milestones=[2, 5], gamma=0.5)
    assert [m.lr_at(e * 10) for e in (0, 2, 5)] == [1.0, 0.5, 0.25]


def test_cosine_with_warmup_is_a_pure_function_of_the_step():
    s = sched("cosine", warmup_epochs=1, warmup_start=0.1, min_lr=0.0)
    assert s.lr_at(0) == pytest.approx(0.1) and s.lr_at(10) == pytest.approx(1.0)
    assert s.lr_at(55) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert s.lr_at(100) == pytest.approx(0.0, abs=1e-12)


def test_cosine_restarts_warm_up_in_every_cycle():
    s = sched("cosine_restarts", epochs=21, cycle_epochs=7, warmup_epochs=1, warmup_start=0.0)
    for cycle in range(3):
        start = cycle * 70
        assert s.lr_at(start) == pytest.approx(0.0, abs=1e-12)
        assert s.lr_at(start + 10) == pytest.approx(1.0)
        assert s.lr_at(start + 69) < 0.01


def test_onecycle_matches_torch():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=50, anneal_strategy="cos",
                                              cycle_momentum=False)
    ours = sched("onecycle", epochs=5, spe=10, lr=0.1)
    for step in range(50):
        assert ours.lr_at(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6), step
        opt.step()
        ref.step()


@pytest.mark.parametrize("patience, cooldown", [(7, 1), (2, 0), (0, 2)])
def test_plateau_matches_torch_reduce_lr_on_plateau(patience, cooldown):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=patience,
                                                     cooldown=cooldown)
    ours = sched("plateau", lr=0.1, patience=patience, cooldown=cooldown)
    accs = [0.1, 0.2, 0.3, 0.3, 0.29, 0.3, 0.31, 0.31, 0.3] + [0.3] * 25
    for acc in accs:
        before = opt.param_groups[0]["lr"]
        ref.step(acc)
        dropped = ours.epoch_end({"val_acc": acc})
        assert ours.lr_at(0) == pytest.approx(opt.param_groups[0]["lr"])
        assert dropped == (opt.param_groups[0]["lr"] < before)
    state = ours.state_dict()
    again = sched("plateau", lr=0.1, patience=patience, cooldown=cooldown)
    again.load_state_dict(state)
    assert again.lr_at(0) == ours.lr_at(0)


def test_no_decay_groups_skip_norms_and_biases():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    groups = param_groups(model, OptimizerConfig(decay_norm_and_bias=False, weight_decay=0.1))
    assert [len(g["params"]) for g in groups] == [1, 3] and groups[1]["weight_decay"] == 0.0
    for name in ("sgd", "adam", "adamw"):
        assert build_optimizer(model, OptimizerConfig(name=name)).__class__.__name__.lower() == name


def test_seed_stop_rule_stops_two_epochs_after_the_first_drop():
    rule = StopRule(StageConfig(epochs=70, stop=StopConfig(after_lr_drop=1, extra_epochs=2)))
    assert rule.update(1, False, 0.1) is None
    assert rule.update(2, True, 0.1) is None  # LR dropped at the end of epoch 2
    assert rule.update(3, False, 0.3) is None  # the jump
    assert "after LR drop #1" in rule.update(4, False, 0.31)  # one more epoch, then stop


def test_patience_and_max_epochs():
    rule = StopRule(StageConfig(epochs=10, stop=StopConfig(patience=2)))
    assert rule.update(1, False, 0.5) is None
    assert rule.update(2, False, 0.4) is None
    assert "no val_acc improvement" in rule.update(3, False, 0.5)
    assert "reached" in StopRule(StageConfig(epochs=1)).update(1, False, None)
