"""The CIFAR classics (WRN, PreAct ResNet-18) and timm models adapted to small images."""
import pytest
import torch

from lowres.config import ModelConfig
from lowres.errors import ConfigError
from lowres.models import build_model, count_parameters
from lowres.models.zoo import describe_models, describe_timm


def test_wide_resnet_has_its_published_cifar_size():
    # WRN-28-10 on CIFAR-10: 36.5M parameters (Zagoruyko & Komodakis, table 1).
    with torch.device("meta"):
        model = build_model(ModelConfig(name="wrn28_10", stem="k3"), 10)
    assert 36.4e6 < count_parameters(model) < 36.6e6
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)


def test_preact_resnet18_keeps_resolution_and_trains():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="preact_resnet18", stem="k3", drop_path=0.1), 5)
    maps = []
    model.stages[-1].register_forward_hook(lambda m, i, o: maps.append(o.shape))
    out = model(torch.randn(2, 3, 40, 40))
    out.sum().backward()
    assert out.shape == (2, 5) and maps[0][-2:] == (5, 5)  # 40 -> 40, 20, 10, 5
    assert 11.1e6 < count_parameters(model) < 11.3e6  # the usual 11.2M at 10 classes


def test_lowres_models_lists_the_classics_with_their_k3_stem():
    rows = {r["name"]: r for r in describe_models(size=32, num_classes=10)}
    assert {"wrn16_8", "wrn28_10", "preact_resnet18"} <= set(rows)
    # WRN-28-10 at 32x32: about 5.25 G multiply-adds, i.e. 10.5 GFLOPs.
    assert 10.0 < rows["wrn28_10"]["gflops"] < 11.0


timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name, stem_module, grid", [
    ("resnet18d", "layer1", 40),          # ResNet-D: deep stem stride and max-pool removed
    ("convnext_atto", "stages.0", 40),    # ConvNeXt: 4x4/4 patchify conv becomes 3x3/1
    ("mobilenetv3_small_050", "blocks.0", 40),  # MobileNetV3: conv_stem stride removed
])
def test_timm_stem_adapted_for_small_images(name, stem_module, grid):
    model = build_model(ModelConfig(name=f"timm:{name}", stem="k3", init="default"), 7)
    seen = []
    model.get_submodule(stem_module).register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    assert model(torch.randn(2, 3, 40, 40)).shape == (2, 7)
    assert tuple(seen[0][-2:]) == (grid, grid)


def test_timm_imagenet_stem_is_timms_network():
    model = build_model(ModelConfig(name="timm:resnet18d", stem="imagenet", init="default"), 7)
    assert isinstance(model.maxpool, torch.nn.MaxPool2d) and model.conv1[0].stride == (2, 2)


def test_timm_gets_dropout_drop_path_and_mlp_head_from_the_config():
    model = build_model(ModelConfig(name="timm:resnet18d", dropout=0.3, drop_path=0.2), 7)
    assert model.drop_rate == 0.3
    assert any(type(m).__name__ == "DropPath" for m in model.modules())
    mlp = build_model(ModelConfig(name="timm:resnet18d", head="mlp", head_hidden=32), 7)
    assert isinstance(mlp.fc[2], torch.nn.BatchNorm1d) and mlp.fc[-1].out_features == 7


def test_unknown_timm_name_suggests_the_nearest_in_one_line():
    with pytest.raises(ConfigError, match=r"timm has no model 'convnext_attto' \(did you mean "
                                          r"timm:convnext_atto") as info:
        build_model(ModelConfig(name="timm:convnext_attto"), 7)
    assert "\n" not in str(info.value)


def test_describe_timm_reports_the_grid_after_the_stem():
    rows = list(describe_timm("resnet18d", size=40, num_classes=10))
    assert rows[0]["name"] == "timm:resnet18d" and rows[0]["stem_grid"] == "37x37"
    assert 11.0e6 < rows[0]["params"] < 11.5e6 and rows[0]["gflops"] > 1


def test_timm_init_torchvision_keeps_timms_own_init():
    torch.manual_seed(0)
    ours = build_model(ModelConfig(name="timm:convnext_atto", init="torchvision"), 7)
    torch.manual_seed(0)
    theirs = timm.create_model("convnext_atto", pretrained=False, num_classes=7, drop_rate=0.8)
    # Same random stream: every layer after the swapped stem conv is timm's init, untouched.
    assert torch.equal(ours.stages[0].blocks[0].conv_dw.weight, theirs.stages[0].blocks[0].conv_dw.weight)
