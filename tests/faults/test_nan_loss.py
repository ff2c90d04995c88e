"""Promise 6: a NaN/inf loss is caught on the device (no per-step sync: see
tests/train/test_accelerator_path_on_cpu.py, which runs an epoch under the sync detector),
the run stops within CHECK_EVERY steps with one line and a hint, and no NaN weights reach
last.pt or best.pt. train.on_nan=skip_step undoes the bad steps, counts them, stops after
train.nan_max_skips."""
import pytest
import torch

from run_configs import write_config, error_lines
from lowres.cli import main
from lowres.config import load
from lowres.data.prepare import prepare
from lowres.run.log import read_metrics, read_status
from lowres.run import checkpoint
from lowres.train import distributed
from lowres.train import engine as engine_mod
from lowres.train.device import resolve
from lowres.train.loop import train
from lowres.train.run_state import Run


def _poison(monkeypatch, bad_calls):
    """The loss of the given training steps (1-based calls) becomes NaN, as a bad image or a
    too-high LR makes it."""
    real, calls = engine_mod.soft_cross_entropy, [0]

    def loss(*args):
        calls[0] += 1
        value = real(*args)
        return value * float("nan") if calls[0] in bad_calls else value

    monkeypatch.setattr(engine_mod, "soft_cross_entropy", loss)
    return calls


def _all_finite(state):
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_a_nan_loss_stops_within_the_bound_and_saves_nothing_nan(tiny_data, tmp_path,
                                                                 monkeypatch, capsys):
    monkeypatch.setattr(engine_mod, "CHECK_EVERY", 3)
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 3, "augment": []}])
    run = tmp_path / "run"
    calls = _poison(monkeypatch, {6})  # 4 steps per epoch: epoch 2, step 2
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 2
    assert calls[0] - 6 < 3  # stopped within CHECK_EVERY steps of the bad one
    err = error_lines(capsys)
    assert len(err) == 1 and "NaN/inf" in err[0] and "lower the learning rate" in err[0] \
        and "check the data" in err[0] and f"lowres train --resume {run}" in err[0], err
    last = checkpoint.load(run / "checkpoints" / "last.pt")
    assert last["position"]["epoch"] == 1 and _all_finite(last["model"])
    assert _all_finite(checkpoint.load(run / "checkpoints" / "best.pt")["model"])
    assert [r["epoch"] for r in read_metrics(run)] == ["1"]
    assert read_status(run)["state"] == "stopped"
    monkeypatch.undo()  # the data is fixed: the resume finishes
    assert train(None, resume=run).state == "finished"


def test_a_diverging_learning_rate_stops_in_one_line(tiny_data, tmp_path, capsys):
    stages = [{"epochs": 2, "augment": [], "optimizer": {"lr": 1e12, "momentum": 0.9}}]
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=stages)
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run")]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "lower the learning rate" in err[0], err


def test_skip_step_undoes_bad_steps_counts_them_and_stops_after_the_limit(tiny_data, tmp_path,
                                                                          monkeypatch, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, train={"on_nan": "skip_step", "ema": 0.9})
    run = tmp_path / "run"
    _poison(monkeypatch, {3, 6})
    assert train(cfg, run_dir=run).state == "finished"
    last = checkpoint.load(run / "checkpoints" / "last.pt")
    assert last["nan_skips"] == 2 and _all_finite(last["model"]) and _all_finite(last["ema"])
    assert all(r["train_loss"] != "nan" for r in read_metrics(run))
    capsys.readouterr()
    _poison(monkeypatch, {3, 6})
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run2"),
                 "train.nan_max_skips=1"]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "2 steps had a non-finite loss" in err[0], err


def test_a_skipped_step_leaves_weights_statistics_and_optimizer_state_as_they_were(
        tiny_data, tmp_path, monkeypatch):
    stages = [{"epochs": 1, "augment": [], "optimizer": {"name": "adamw", "lr": 0.01}}]
    cfg = load(write_config(tmp_path / "c.yaml", tiny_data, stages=stages,
                            train={"on_nan": "skip_step"}))
    run = Run(cfg, tmp_path / "run", prepare(cfg.data, cfg.seed), resolve(cfg.train, cfg.data),
              distributed.Context())
    run.start_stage()
    batches = run.loader.batches(0)
    x, y = next(batches)
    x = run.engine._prepare(x.float() / 255)
    run.engine.train_step(x, y, run.optimizer)  # a good step: the optimizer has state now
    before = ({k: v.clone() for k, v in run.engine.module.state_dict().items()},
              {i: {k: v.clone() for k, v in s.items()} for i, s in
               enumerate(run.optimizer.state.values())})
    _poison(monkeypatch, {1})
    loss, _ = run.engine.train_step(x, y, run.optimizer)
    assert loss.item() == 0.0  # a skipped step adds nothing to the epoch's loss
    after = run.engine.module.state_dict()
    assert [k for k in after if not torch.equal(before[0][k], after[k])] == []
    for i, s in enumerate(run.optimizer.state.values()):
        assert all(torch.equal(before[1][i][k], v) for k, v in s.items())
    assert int(run.engine.nan_guard.bad) == 1
    with pytest.raises(Exception, match="more than train.nan_max_skips=0"):
        run.engine.nan_guard.max_skips = 0
        run.engine.nan_guard.check(0, 2)


def test_skip_step_mode_never_waits_for_the_device(tiny_data, tmp_path, monkeypatch):
    """The undo of a bad step is torch.where over every tensor: no host read."""
    from sync_detector import SyncDetector

    cfg = load(write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 1, "augment": []}],
                            train={"on_nan": "skip_step", "ema": 0.9}))
    run = Run(cfg, tmp_path / "run", prepare(cfg.data, cfg.seed), resolve(cfg.train, cfg.data),
              distributed.Context())
    run.start_stage()
    x, y = next(run.loader.batches(0))
    x = run.engine._prepare(x.float() / 255)
    run.engine.train_step(x, y, run.optimizer)  # warm-up: optimizer state exists
    _poison(monkeypatch, {1})
    with SyncDetector():
        run.engine.train_step(x, y, run.optimizer)  # a bad step, undone
        run.engine.train_step(x, y, run.optimizer)  # a good one
        run.engine.ema.update()
