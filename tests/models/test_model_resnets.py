"""ResNet family: the seed's stems, widths, stochastic depth."""
import pytest
import torch
from torch import nn
from torchvision.ops import StochasticDepth

from lowres.config import ModelConfig
from lowres.models import build_model
from lowres.models.resnets import DropPathBasicBlock, DropPathBottleneck, feature_shapes

RESNET_NAMES = ["resnet18", "resnet34", "resnet34_wide", "resnet50", "wide_resnet50_2", "resnext50_32x4d"]


def meta_model(name, **kw):
    with torch.device("meta"):
        return build_model(ModelConfig(name=name, **kw), 200)


@pytest.mark.parametrize("name", RESNET_NAMES + ["resnet8", "cnn_small"])
def test_k4_stem_is_the_seeds(name):
    model = meta_model(name, stem="k4")
    conv = model.conv1
    assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == ((4, 4), (1, 1), (0, 0), None)
    assert conv.in_channels == 3
    assert isinstance(model.maxpool, nn.Identity)
    assert not any(isinstance(m, nn.MaxPool2d) for m in [model.conv1, model.bn1, model.maxpool])


def test_k4_stem_gives_37x37_in_layer1():
    model = build_model(ModelConfig(name="resnet18", stem="k4"), 200).eval()
    with torch.no_grad():
        shapes = feature_shapes(model, torch.randn(1, 3, 40, 40))
    assert shapes["stem"] == (1, 64, 37, 37)
    assert shapes["layer1"] == (1, 64, 37, 37)
    assert shapes["layer4"] == (1, 512, 5, 5)


def test_resnet50_k4_stage_shapes_on_meta():
    shapes = feature_shapes(meta_model("resnet50").eval(), torch.empty(1, 3, 40, 40, device="meta"))
    assert shapes["stem"][2:] == (37, 37) and shapes["layer4"] == (1, 2048, 5, 5)


def test_k3_and_imagenet_stems():
    k3 = meta_model("resnet50", stem="k3")
    assert (k3.conv1.kernel_size, k3.conv1.stride, k3.conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert k3.conv1.bias is None and isinstance(k3.maxpool, nn.Identity)
    im = meta_model("resnet50", stem="imagenet")
    assert (im.conv1.kernel_size, im.conv1.stride, im.conv1.padding) == ((7, 7), (2, 2), (3, 3))
    assert isinstance(im.maxpool, nn.MaxPool2d)
    shapes = feature_shapes(im.eval(), torch.empty(1, 3, 40, 40, device="meta"))
    assert shapes["stem"][2:] == (10, 10) and shapes["layer4"][2:] == (2, 2)


def test_in_channels_replaces_stem_input():
    with torch.device("meta"):
        model = build_model(ModelConfig(name="resnet50"), 200, in_channels=1)
    assert model.conv1.in_channels == 1


def test_resnet34_wide_doubles_every_layer():
    plain, wide = meta_model("resnet34"), meta_model("resnet34_wide")
    assert wide.conv1.out_channels == 2 * plain.conv1.out_channels == 128
    for name in ("layer1", "layer2", "layer3", "layer4"):
        p, w = getattr(plain, name), getattr(wide, name)
        assert len(p) == len(w)
        for bp, bw in zip(p, w):
            assert bw.conv1.out_channels == 2 * bp.conv1.out_channels
            assert bw.conv2.out_channels == 2 * bp.conv2.out_channels
    assert wide.layer1[0].downsample is None  # the stem was widened as well
    assert wide.fc[-1].in_features == 1024


def test_torchvision_variants():
    wide = meta_model("wide_resnet50_2")
    assert wide.layer1[0].conv2.out_channels == 128 and wide.layer4[0].conv3.out_channels == 2048
    rx = meta_model("resnext50_32x4d")
    assert rx.layer1[0].conv2.groups == 32 and rx.layer1[0].conv2.out_channels == 128


@pytest.mark.parametrize("name", RESNET_NAMES)
def test_drop_path_rates_rise_linearly(name):
    model = meta_model(name, drop_path=0.2)
    blocks = [m for m in model.modules() if isinstance(m, (DropPathBasicBlock, DropPathBottleneck))]
    assert isinstance(blocks[0].drop_path, nn.Identity)
    rates = [b.drop_path.p for b in blocks[1:]]
    expected = [0.2 * i / (len(blocks) - 1) for i in range(1, len(blocks))]
    assert rates == pytest.approx(expected) and rates[-1] == pytest.approx(0.2)
    assert all(b.drop_path.mode == "row" for b in blocks[1:])


def test_drop_path_zero_is_identity_everywhere():
    model = meta_model("resnet50", drop_path=0.0)
    assert not any(isinstance(m, StochasticDepth) for m in model.modules())


def test_drop_path_block_drops_whole_samples_and_rescales():
    torch.manual_seed(0)
    block = DropPathBasicBlock(8, 8)
    block.drop_path = StochasticDepth(0.5, "row")
    x = torch.randn(64, 8, 6, 6)
    block.train()
    out = block(x)
    # the residual branch exactly as the block computes it (same train-mode BN)
    branch = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
    dropped = torch.relu(x)
    kept = torch.relu(branch / 0.5 + x)
    is_dropped = torch.tensor([torch.allclose(o, d, atol=1e-6) for o, d in zip(out, dropped)])
    is_kept = torch.tensor([torch.allclose(o, k, atol=1e-5) for o, k in zip(out, kept)])
    assert bool((is_dropped ^ is_kept).all())  # each sample: branch dropped, or kept and scaled
    assert 10 < int(is_dropped.sum()) < 54
    block.eval()  # eval: identity on the branch
    out = block(x)
    ref = torch.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))) + x)
    assert torch.allclose(out, ref, atol=1e-6)


def test_drop_path_model_eval_deterministic_train_stochastic():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="resnet8", drop_path=0.5, dropout=0.0), 10)
    x = torch.randn(8, 3, 40, 40)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
        for m in model.modules():  # remove the drop path: eval output must not change
            if isinstance(m, DropPathBasicBlock):
                m.drop_path = nn.Identity()
        c = model(x)
    assert torch.equal(a, b) and torch.allclose(a, c, atol=1e-6)

    model = build_model(ModelConfig(name="resnet8", drop_path=0.5, dropout=0.0), 10).train()
    with torch.no_grad():
        outs = [model(x) for _ in range(4)]
    assert any(not torch.allclose(outs[0], o) for o in outs[1:])
    plain = build_model(ModelConfig(name="resnet8", drop_path=0.0, dropout=0.0), 10).train()
    with torch.no_grad():
        assert torch.equal(plain(x), plain(x))
