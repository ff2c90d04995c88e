"""EfficientNet-B7 and Swin-T adapted to 40x40."""
import pytest
import torch
from torch import nn
from torchvision.models.swin_transformer import PatchMerging, ShiftedWindowAttention
from torchvision.ops import StochasticDepth

from lowres.config import ModelConfig
from lowres.models import build_model
from lowres.models.adapted import ChannelExpansion, swin_grids, swin_window


def meta_model(name, **kw):
    with torch.device("meta"):
        return build_model(ModelConfig(name=name, **kw), 200)


@pytest.mark.parametrize("stem,conv,grid", [
    ("k3", ((3, 3), (1, 1), (1, 1)), 3),
    ("k4", ((4, 4), (1, 1), (0, 0)), 3),
    ("imagenet", ((3, 3), (2, 2), (1, 1)), 2),  # torchvision's own stem: total stride 32
])
def test_efficientnet_stems_and_final_map(stem, conv, grid):
    model = meta_model("efficientnet_b7", stem=stem).eval()
    c = model.features[0][0]
    assert (c.kernel_size, c.stride, c.padding) == conv and c.out_channels == 64
    assert isinstance(model.features[0][1], nn.BatchNorm2d)
    assert model.features(torch.empty(1, 3, 40, 40, device="meta")).shape == (1, 2560, grid, grid)


def test_efficientnet_stochastic_depth():
    model = meta_model("efficientnet_b7", drop_path=0.3)
    ps = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    n = len(ps)  # torchvision: block i of n gets 0.3 * i / n
    assert ps[0] == 0 and max(ps) == pytest.approx(0.3 * (n - 1) / n)
    off = meta_model("efficientnet_b7")  # drop_path 0: torchvision's 0.2 default is not used
    assert all(m.p == 0 for m in off.modules() if isinstance(m, StochasticDepth))


def test_swin_window_choice():
    assert swin_grids(20) == [20, 10, 5, 5]
    assert swin_window([20, 10, 5, 5]) == 5
    assert swin_window(swin_grids(32)) == 4


def test_swin_lowres_layout():
    model = build_model(ModelConfig(name="swin_t", stem="k4"), 200).eval()
    embed = model.features[0][0]
    assert embed.kernel_size == (2, 2) and embed.stride == (2, 2)
    assert model.window == 5 and model.token_grids == [20, 10, 5, 5]
    assert isinstance(model.features[2], PatchMerging) and isinstance(model.features[4], PatchMerging)
    assert isinstance(model.features[6], ChannelExpansion)
    grids = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: grids.append((inp[0].shape[1:3], mod)))
             for m in model.modules() if isinstance(m, ShiftedWindowAttention)]
    with torch.no_grad():
        feats = model.features(torch.randn(1, 3, 40, 40))
    for h in hooks:
        h.remove()
    assert feats.shape == (1, 5, 5, 768)  # final token grid 5x5, 768 channels
    assert len(grids) == 12
    for (h, w), attn in grids:  # every stage is a whole number of windows: no padding
        assert h % attn.window_size[0] == 0 and w % attn.window_size[1] == 0
    shifts = [tuple(attn.shift_size) for _, attn in grids]
    assert shifts[:4] == [(0, 0), (2, 2), (0, 0), (2, 2)]


def test_swin_shifted_window_mask_keeps_wrapped_tokens_apart():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="swin_t"), 200).eval()
    plain, shifted = model.features[1][0], model.features[1][1]
    with torch.no_grad():  # zero q and k: near-uniform attention, so every allowed pair mixes visibly
        for block in (plain, shifted):
            block.attn.qkv.weight[: 2 * 96].zero_()
            block.attn.qkv.bias[: 2 * 96].zero_()
    x = torch.randn(1, 20, 20, 96)
    y = x.clone()
    y[0, 0, 0] += torch.randn(96)  # a shape change, not a constant LayerNorm would remove
    with torch.no_grad():
        d_plain = (plain(y) - plain(x)).abs().amax(-1)[0]
        d_shift = (shifted(y) - shifted(x)).abs().amax(-1)[0]
    # unshifted: token (0, 0) reaches its whole 5x5 window and nothing else
    expect = torch.zeros(20, 20, dtype=torch.bool)
    expect[:5, :5] = True
    assert torch.equal(d_plain > 1e-4, expect)
    # shifted by 2: the rolled window holding (0, 0) also holds rows/cols 17-19, which the
    # mask must keep apart; (0, 0) may only reach the 2x2 corner it came from
    expect = torch.zeros(20, 20, dtype=torch.bool)
    expect[:2, :2] = True
    assert torch.equal(d_shift > 1e-4, expect)


def test_swin_imagenet_is_torchvisions():
    model = meta_model("swin_t", stem="imagenet")
    assert model.features[0][0].kernel_size == (4, 4) and model.window == 7
    assert isinstance(model.features[6], PatchMerging)
    assert model.features[1][0].attn.window_size == [7, 7]
    model.eval()
    assert model(torch.empty(1, 3, 40, 40, device="meta")).shape == (1, 200)


def test_swin_k3_equals_k4():
    a, b = meta_model("swin_t", stem="k3"), meta_model("swin_t", stem="k4")
    assert [type(m) for m in a.modules()] == [type(m) for m in b.modules()]
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


def test_swin_stochastic_depth():
    model = meta_model("swin_t", drop_path=0.2)
    ps = [m.p for m in model.modules() if isinstance(m, StochasticDepth)]
    assert ps[0] == 0 and ps[-1] == pytest.approx(0.2)
