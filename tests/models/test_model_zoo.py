"""The zoo's interface: names, errors, shapes, describe_models, FLOP convention."""
import pytest
import torch
from torch import nn

from lowres.config import ModelConfig
from lowres.errors import ConfigError
from lowres.models import build_model, count_flops, count_parameters, describe_models, model_names

REQUIRED = {"resnet8", "cnn_small", "resnet18", "resnet34", "resnet34_wide", "resnet50",
            "wide_resnet50_2", "resnext50_32x4d", "efficientnet_b7", "swin_t"}
CHEAP = ["resnet8", "cnn_small", "resnet18", "resnet50", "swin_t"]  # real CPU forward is cheap
BIG = ["resnet34", "resnet34_wide", "wide_resnet50_2", "resnext50_32x4d", "efficientnet_b7",
       "wrn16_4", "wrn16_8", "wrn28_10", "wrn40_4", "preact_resnet18"]  # the CIFAR classics too


def meta_model(name, **kw):
    num_classes = kw.pop("num_classes", 200)
    in_channels = kw.pop("in_channels", 3)
    with torch.device("meta"):
        return build_model(ModelConfig(name=name, **kw), num_classes, in_channels=in_channels)


def test_model_names():
    assert set(model_names()) >= REQUIRED
    assert set(model_names()) == set(CHEAP) | set(BIG)


def test_unknown_name_is_one_line_config_error():
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(name="resnet5"), 200)
    assert str(err.value) == "config key 'model.name': unknown model 'resnet5' (did you mean 'resnet50'?)"


@pytest.mark.parametrize("key,value", [("stem", "k5"), ("head", "mpl"), ("init", "he")])
def test_bad_choices_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"config key 'model.{key}'"):
        build_model(ModelConfig(name="resnet8", **{key: value}), 10)


def test_drop_path_refused_without_residuals():
    with pytest.raises(ConfigError, match="model.drop_path.*cnn_small"):
        build_model(ModelConfig(name="cnn_small", drop_path=0.1), 10)
    build_model(ModelConfig(name="cnn_small", drop_path=0.0), 10)


@pytest.mark.parametrize("name", CHEAP)
def test_forward_shape_batch2(name):
    model = build_model(ModelConfig(name=name), 200).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 40, 40))
    assert out.shape == (2, 200) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", BIG)
def test_big_models_shape_on_meta(name):
    out = meta_model(name).eval()(torch.empty(2, 3, 40, 40, device="meta"))
    assert out.shape == (2, 200)


@pytest.mark.parametrize("name", ["resnet8", "cnn_small", "swin_t"])
def test_one_channel_input(name):
    model = build_model(ModelConfig(name=name, head="mlp", head_hidden=16), 5, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 40, 40)).shape == (2, 5)


@pytest.mark.parametrize("name", BIG)
def test_one_channel_input_big_on_meta(name):
    out = meta_model(name, in_channels=1).eval()(torch.empty(1, 1, 40, 40, device="meta"))
    assert out.shape == (1, 200)


def test_train_step_small():
    model = build_model(ModelConfig(name="resnet8", drop_path=0.1, head="mlp", head_hidden=32), 10)
    x, y = torch.randn(4, 3, 40, 40), torch.randint(0, 10, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_count_parameters():
    assert count_parameters(nn.Linear(10, 3)) == 33
    model = build_model(ModelConfig(name="resnet8"), 200)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_flop_convention_two_per_multiply_add():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 7, bias=False))
    assert count_flops(lin, size=4) == 2 * 48 * 7
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, size=5) == 2 * (3 * 9) * 8 * 25


def test_describe_models():
    rows = describe_models()
    assert [r["name"] for r in rows] == model_names()
    by = {r["name"]: r for r in rows}
    for r in rows:
        assert set(r) == {"name", "params", "gflops", "summary"}
        assert isinstance(r["params"], int) and r["params"] > 0
        assert isinstance(r["gflops"], float) and r["gflops"] > 0
        assert r["summary"] and "\n" not in r["summary"]
    # ResNet-50, k4 stem, 200 classes: 23.5M body + 2048*200+200 head; 3.84 GFLOPs measured
    assert by["resnet50"]["params"] == 23_911_496
    assert 3.7 < by["resnet50"]["gflops"] < 4.0
    assert by["resnet8"]["gflops"] < by["cnn_small"]["gflops"] < by["resnet18"]["gflops"]
    # the meta-device count equals a real build's
    assert by["resnet8"]["params"] == count_parameters(build_model(ModelConfig(name="resnet8"), 200))
