"""The Python API: the CLI's operations as functions, with the CLI's configs and errors."""
import csv
import os
import signal

import numpy as np
import pytest
import torch

import lowres
from lowres.cli import main
from lowres.errors import ConfigError, DataError, LowresError

pd = pytest.importorskip("pandas")


def fast_config(data_root, epochs=2, **model):
    return {"seed": 0, "name": "api",
            "data": {"root": str(data_root), "val_fraction": 0.25, "per_class": 8},  # 2 steps/epoch
            "model": {"name": "resnet8", "stem": "k3", "dropout": 0.1, **model},
            "train": {"batch_size": 16, "eval_batch_size": 64, "device": "cpu"},
            "stages": [{"epochs": epochs, "scheduler": {"name": "cosine"},
                        "augment": [{"op": "hflip", "p": 0.5}]}],
            "track": {"plots": False, "report": False}}


def test_train_load_predict_evaluate_from_python(tiny_data, tmp_path, capsys):
    run = lowres.train(fast_config(tiny_data), "stages.0.epochs=1", run_dir=tmp_path / "run")
    assert isinstance(run, lowres.TrainedRun) and run.state == "finished"
    metrics = run.metrics
    assert isinstance(metrics, pd.DataFrame) and list(metrics["epoch"]) == [1]
    assert {"train_loss", "val_acc", "lr"} <= set(metrics.columns)
    assert run.events[0]["event"] == "run_start" and run.config["stages"][0]["epochs"] == 1
    assert run.best["epoch"] == 1 and run.best["val_acc"] == pytest.approx(metrics["val_acc"].max())
    model = run.model()
    probs = model(torch.zeros(3, 3, 16, 16, dtype=torch.uint8))
    assert probs.shape == (3, 4) and torch.allclose(probs.sum(1), torch.ones(3))
    assert model.class_names == ["0", "1", "2", "3"] and not model.training
    fig = run.plot()
    assert len(fig.axes) == 3
    # The submission as a DataFrame is the CLI's CSV; `out` writes it too.
    sub = lowres.predict([run], tiny_data, tta="flip", out=tmp_path / "sub.csv")
    assert main(["predict", str(run.dir), "--data", str(tiny_data), "--tta", "flip",
                 "--out", str(tmp_path / "cli.csv")]) == 0
    with open(tmp_path / "cli.csv", newline="") as f:
        cli_rows = list(csv.reader(f))[1:]
    assert [list(r) for r in sub.itertuples(index=False)] == cli_rows
    assert (tmp_path / "sub.csv").read_text() == (tmp_path / "cli.csv").read_text()
    result = lowres.evaluate(run)
    assert 0 <= result["accuracy"] <= 1
    assert repr(lowres.load_run(run.dir)).startswith("TrainedRun(")


def test_api_errors_are_one_line_exceptions_not_system_exit(tiny_data, tmp_path):
    with pytest.raises(DataError, match="data.root=.*directory not found"):
        lowres.train(fast_config(tmp_path / "missing"), run_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="did you mean") as info:
        lowres.train(fast_config(tiny_data), "stages.0.epohcs=1", run_dir=tmp_path / "b")
    assert "\n" not in str(info.value)
    with pytest.raises(LowresError, match="not a lowres run directory"):
        lowres.load_run(tmp_path)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_interrupt_saves_and_prints_the_resume_call(tiny_data, tmp_path, monkeypatch, capsys):
    """The notebook stop button sends SIGINT to the kernel's main thread, as Ctrl-C does."""
    from lowres.train import loop

    end_epoch = loop.end_epoch

    def end_epoch_then_interrupt(*args, **kwargs):
        out = end_epoch(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # pressed during the first epoch's end
        return out

    monkeypatch.setattr(loop, "end_epoch", end_epoch_then_interrupt)
    run = lowres.train(fast_config(tiny_data, epochs=2), run_dir=tmp_path / "run")
    assert run.state.startswith("stopped") and list(run.metrics["epoch"]) == [1]
    assert f'lowres.resume("{tmp_path / "run"}")' in capsys.readouterr().out
    monkeypatch.setattr(loop, "end_epoch", end_epoch)
    resumed = lowres.resume(run.dir)
    assert resumed.state == "finished" and list(resumed.metrics["epoch"]) == [1, 2]


def test_api_names_shared_with_subpackages_are_functions_and_subpackages(monkeypatch):
    import inspect

    import lowres.train.loop as loop_module
    from lowres.models import zoo

    assert "config" in inspect.signature(lowres.train).parameters  # the function, for notebooks
    assert lowres.train.loop is loop_module and lowres.models.zoo is zoo  # and the package
    monkeypatch.setattr("lowres.train.step_control.StepControl.CONSENSUS_EVERY", 7)  # string paths
    from lowres.train.step_control import StepControl  # still resolve through lowres.train

    assert StepControl.CONSENSUS_EVERY == 7


timm = pytest.importorskip("timm")  # the tests below need timm


@pytest.mark.parametrize("name", ["resnet10t", "convnext_atto", "mobilenetv3_small_050"])
def test_timm_model_trains_pauses_resumes_and_predicts(name, tiny_data, tmp_path):
    """ResNet-D (resnet10t: deep stem, avg-pool shortcut), ConvNeXt and MobileNetV3:
    adapted, trained, saved, resumed, used."""
    cfg = fast_config(tiny_data, epochs=2, name=f"timm:{name}", drop_path=0.05)
    run = lowres.train(cfg, run_dir=tmp_path / "run", pause_after=1)
    assert run.state.startswith("stopped")
    run = lowres.resume(run.dir)
    assert run.state == "finished" and len(run.metrics) == 2
    assert np.isfinite(run.metrics["train_loss"]).all()
    sub = lowres.predict(run, tiny_data)
    assert len(sub) == 12 and set(sub["Category"]) <= {"0", "1", "2", "3"}

