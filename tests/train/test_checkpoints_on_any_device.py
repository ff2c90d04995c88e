"""Checkpoints across devices, mid-epoch checkpoints, and writes off the training path."""
import time

import pytest
import torch

from run_configs import write_config
from lowres.cli import main
from lowres.run.log import read_events, read_metrics
from lowres.run import checkpoint
from lowres.train import distributed
from lowres.train.engine import CONTINUE, CUT, SAVE, Engine
from lowres.train.loop import train
from lowres.train.step_control import StepControl, StopFlag

TIMING = {"images_per_s", "seconds", "elapsed"}
CUDA_STATE = torch.zeros(16, dtype=torch.uint8)  # a CUDA (Philox) generator state: seed + offset


def _pretend_saved_on_a_gpu(path, old_format=False):
    state = checkpoint.load(path)
    state["rng"]["augment"] = CUDA_STATE.clone()
    state["rng"]["cuda"] = [CUDA_STATE.clone(), CUDA_STATE.clone()]  # two GPUs' states
    if old_format:
        del state["rng"]["augment_device"]  # as written before the device type was stored
    else:
        state["rng"]["augment_device"] = "cuda"
    checkpoint.save(state, path)


@pytest.mark.parametrize("old_format", [False, True])
def test_a_run_saved_on_a_gpu_resumes_on_the_cpu(tiny_data, tmp_path, capsys, old_format):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    run = tmp_path / "run"
    assert train(cfg, run_dir=run, pause_after_steps=2).state == "stopped"
    _pretend_saved_on_a_gpu(run / "checkpoints" / "last.pt", old_format)
    assert train(None, resume=run).state == "finished"
    assert "augmentation random stream starts anew" in capsys.readouterr().err
    assert any("saved on cuda" in e.get("message", "") for e in read_events(run))


def test_a_saved_cuda_device_does_not_stop_predict_on_the_cpu(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 1, "augment": []}])
    run = tmp_path / "run"
    assert train(cfg, run_dir=run).state == "finished"
    best = run / "checkpoints" / "best.pt"
    state = checkpoint.load(best)
    state["config"]["train"]["device"] = "cuda"  # trained on a GPU machine
    state["config"]["train"]["precision"] = "fp16"
    checkpoint.save(state, best)
    assert main(["predict", str(run), "--data", str(tiny_data), "--out",
                 str(tmp_path / "sub.csv")]) == 0


def test_step_control_saves_on_its_clock_and_cuts_on_the_flag():
    now = [0.0]
    flag = StopFlag(None, None, None)
    control = StepControl(flag, checkpoint_minutes=1.0, dist=distributed.Context(),
                          clock=lambda: now[0])
    assert control() == CONTINUE
    now[0] = 59.0
    assert control() == CONTINUE
    now[0] = 60.0
    assert control() == SAVE  # and the clock restarts
    now[0] = 119.0
    assert control() == CONTINUE
    flag.reason = "SIGTERM"
    assert control() == CUT
    off = StepControl(StopFlag(None, None, None), 0.0, distributed.Context(), clock=lambda: 1e9)
    assert off() == CONTINUE  # checkpoint_minutes=0: never


def test_a_mid_epoch_checkpoint_resumes_as_if_never_stopped(tiny_data, tmp_path, monkeypatch):
    """train.checkpoint_minutes saves last.pt mid-epoch; a crash right after loses only the
    steps since, and the resumed run ends bitwise equal to one never stopped."""
    stages = [{"epochs": 2, "scheduler": {"name": "cosine", "warmup_epochs": 1},
               "augment": [{"op": "hflip", "p": 0.5}, {"op": "erasing", "p": 0.5}]}]
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=stages, train={"ema": 0.9})
    straight = tmp_path / "straight"
    assert train(cfg, run_dir=straight).state == "finished"

    crashed = tmp_path / "crashed"
    real_step, calls = Engine.train_step, [0]

    def crash_at_step_7(self, *args):  # 4 steps per epoch: epoch 2, step 3
        calls[0] += 1
        if calls[0] == 7:
            raise RuntimeError("simulated crash")
        return real_step(self, *args)

    monkeypatch.setattr(Engine, "train_step", crash_at_step_7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, ["train.checkpoint_minutes=1e-9"], run_dir=crashed)  # saves after every step
    monkeypatch.setattr(Engine, "train_step", real_step)
    saved = checkpoint.load(crashed / "checkpoints" / "last.pt")
    assert (saved["position"]["epoch"], saved["position"]["step"]) == (1, 2)  # mid-epoch 2
    assert train(None, resume=crashed).state == "finished"

    a = checkpoint.load(straight / "checkpoints" / "last.pt")
    b = checkpoint.load(crashed / "checkpoints" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]:
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(read_metrics(straight)) == strip(read_metrics(crashed))


def test_slow_checkpoint_writes_do_not_hold_up_training(tiny_data, tmp_path, monkeypatch):
    """An epoch end's checkpoint is written by a worker thread: the next epoch trains while
    it writes, and every file is complete when train() returns."""
    real_save, real_epoch = checkpoint.save, Engine.train_epoch
    times = {"epochs": [], "first_write_done": None}

    def slow_first_save(state, path, **kwargs):
        if times["first_write_done"] is None:
            time.sleep(1.0)
            real_save(state, path, **kwargs)
            times["first_write_done"] = time.monotonic()
        else:
            real_save(state, path, **kwargs)

    def timed_epoch(self, *args, **kwargs):
        times["epochs"].append(time.monotonic())
        return real_epoch(self, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", slow_first_save)
    monkeypatch.setattr(Engine, "train_epoch", timed_epoch)
    cfg = write_config(tmp_path / "c.yaml", tiny_data,
                       stages=[{"epochs": 3, "scheduler": {"name": "constant"}, "augment": []}])
    run = tmp_path / "run"
    assert train(cfg, run_dir=run).state == "finished"
    assert times["epochs"][1] < times["first_write_done"]  # epoch 2 began during the write
    assert checkpoint.load(run / "checkpoints" / "last.pt")["position"]["epoch"] == 3
    assert checkpoint.load(run / "checkpoints" / "best.pt")["kind"] == "best"
    assert len(read_metrics(run)) == 3
