"""Init schemes (he_normal, default) and the two heads."""
import math

import pytest
import torch
from torch import nn

from lowres.config import ModelConfig
from lowres.models import build_model
from lowres.models.init import apply_init


@pytest.fixture(scope="module")
def resnet50_he():
    torch.manual_seed(0)
    return build_model(ModelConfig(name="resnet50", init="he_normal"), 200)


@pytest.fixture(scope="module")
def resnet50_default():
    torch.manual_seed(0)
    return build_model(ModelConfig(name="resnet50", init="default"), 200)


def std_ratio(weight, fan_in):
    return weight.std().item() / math.sqrt(2.0 / fan_in)


def test_he_normal_std_matches_fan_in(resnet50_he):
    w = resnet50_he.layer4[0].conv2.weight  # 512x512x3x3: fan_in 4608, 2.4M draws
    assert std_ratio(w, 512 * 9) == pytest.approx(1.0, abs=0.01)
    assert abs(w.mean().item()) < 1e-3
    # 1x1 512 -> 2048: fan_in 512 != fan_out 2048, so torchvision's fan_out init would be 2x off
    assert std_ratio(resnet50_he.layer4[0].conv3.weight, 512) == pytest.approx(1.0, abs=0.02)
    head = resnet50_he.fc[-1]
    assert std_ratio(head.weight, 2048) == pytest.approx(1.0, abs=0.02)
    assert torch.count_nonzero(head.bias) == 0
    assert std_ratio(resnet50_he.conv1.weight, 3 * 16) == pytest.approx(1.0, abs=0.25)  # 3072 draws


def test_he_normal_norms(resnet50_he):
    bns = [m for m in resnet50_he.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(b.weight == 1) and torch.all(b.bias == 0) for b in bns)


def test_he_normal_grouped_and_depthwise_fan_in():
    torch.manual_seed(0)
    grouped = nn.Conv2d(1024, 1024, 3, groups=32, bias=True)  # fan_in 32 * 9
    depthwise = nn.Conv2d(512, 512, 5, groups=512)  # fan_in 25
    apply_init(nn.Sequential(grouped, depthwise), "he_normal")
    assert std_ratio(grouped.weight, 32 * 9) == pytest.approx(1.0, abs=0.02)
    assert std_ratio(depthwise.weight, 25) == pytest.approx(1.0, abs=0.05)
    assert torch.count_nonzero(grouped.bias) == 0


def test_default_is_pytorch_uniform(resnet50_default):
    w = resnet50_default.layer4[0].conv2.weight
    bound = 1 / math.sqrt(512 * 9)
    assert w.abs().max().item() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    head = resnet50_default.fc[-1]
    bound = 1 / math.sqrt(2048)
    assert head.weight.abs().max().item() <= bound and head.bias.abs().max().item() <= bound
    assert head.bias.abs().max().item() > 0  # PyTorch's default bias is not zero
    # torchvision's kaiming fan_out normal (std sqrt(2/2048) = 0.031) was replaced
    conv3 = resnet50_default.layer4[0].conv3.weight
    assert conv3.abs().max().item() <= 1 / math.sqrt(512)
    assert conv3.std().item() == pytest.approx(1 / math.sqrt(512) / math.sqrt(3), rel=0.01)


def test_swin_inits():
    torch.manual_seed(0)
    he = build_model(ModelConfig(name="swin_t", init="he_normal"), 200)
    qkv = he.features[5][0].attn.qkv  # 384 -> 1152
    assert std_ratio(qkv.weight, 384) == pytest.approx(1.0, abs=0.02)
    assert torch.count_nonzero(qkv.bias) == 0
    default = build_model(ModelConfig(name="swin_t", init="default"), 200)
    qkv = default.features[5][0].attn.qkv
    assert qkv.weight.abs().max().item() <= 1 / math.sqrt(384)
    # the relative-position bias table is not a layer: it keeps swin's trunc-normal(0.02)
    table = default.features[5][0].attn.relative_position_bias_table
    assert table.std().item() == pytest.approx(0.02, rel=0.15)


def test_linear_head():
    model = build_model(ModelConfig(name="resnet8", head="linear", dropout=0.8), 200)
    head = model.fc
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear]
    assert head[0].p == 0.8
    assert (head[1].in_features, head[1].out_features) == (64, 200)


def test_mlp_head():
    model = build_model(ModelConfig(name="resnet8", head="mlp", dropout=0.3, head_hidden=48), 10)
    head = model.fc
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head[0].p == 0.3
    assert (head[1].in_features, head[1].out_features) == (64, 48)
    assert head[2].num_features == 48
    assert (head[4].in_features, head[4].out_features) == (48, 10)


@pytest.mark.parametrize("name,attr,features", [
    ("resnet50", "fc", 2048), ("resnet34_wide", "fc", 1024), ("wide_resnet50_2", "fc", 2048),
    ("efficientnet_b7", "classifier", 2560), ("swin_t", "head", 768), ("cnn_small", "fc", 256),
])
def test_head_replaces_every_classifier(name, attr, features):
    with torch.device("meta"):
        model = build_model(ModelConfig(name=name, head="mlp", head_hidden=512, dropout=0.5), 200)
    head = getattr(model, attr)
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head[1].in_features == features and head[-1].out_features == 200
    assert sum(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules()) == 1  # torchvision's is gone


def test_torchvision_init_matches_torchvisions_own_resnet_rule():
    import torch
    from torchvision.models import resnet50 as tv_resnet50

    torch.manual_seed(0)
    ours = build_model(ModelConfig(name="resnet50", init="torchvision"), 200)
    ref = tv_resnet50(num_classes=200)
    # layer3's 3x3 convs: 256 out channels x 9 -> fan_out 2304 (fan_in would also be 2304; use
    # the 1x1 expansion where they differ: fan_out 1024, fan_in 256)
    w_ours = ours.layer3[0].conv3.weight
    w_ref = ref.layer3[0].conv3.weight
    assert abs(w_ours.std().item() - w_ref.std().item()) / w_ref.std().item() < 0.05
    assert abs(w_ours.std().item() - (2 / 1024) ** 0.5) / (2 / 1024) ** 0.5 < 0.05
    # the replaced stem follows the same rule (fan_out = 64 * 4 * 4)
    assert abs(ours.conv1.weight.std().item() - (2 / (64 * 16)) ** 0.5) / (2 / 1024) ** 0.5 < 0.1
