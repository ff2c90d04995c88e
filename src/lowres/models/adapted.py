"""torchvision's EfficientNet-B7 and Swin-T, adapted to 40x40 input.

Both are built with torchvision's own classes; the zoo then replaces the classifier with
its head and applies its init. `stem: imagenet` gives each network's unmodified input
stage, i.e. the seed's original (failing) configuration, and is the only way to get it.

EfficientNet-B7 (`stem` is taken literally, as for the ResNets)
    torchvision's stem is Conv3x3/2 (64 channels) + BN + SiLU, then stages with strides
    1-2-2-2-1-2-1: total stride 32, so 40x40 ends as a 2x2 map (40-20-10-5-3-2).
    `k3` makes the stem conv 3x3 stride 1 pad 1 (the adaptation: "stride 1 instead of 2")
    and `k4` makes it 4x4 stride 1 no padding (the seed's ResNet stem); the BN + SiLU stay.
    Total stride is then 16 and the last map is 3x3x2560 for both
    (k3: 40-40-20-10-5-3; k4: 40-37-19-10-5-3). `drop_path` is torchvision's
    `stochastic_depth_prob` (block i of N gets drop_path * i / N; torchvision's default of
    0.2 is NOT used, 0 means off).

Swin-T (`stem` selects the patch embedding; `k4` and `k3` both mean the low-res one)
    Swin has no conv stem to swap, so the two low-res stem names select the same thing:
    patch size 2 instead of 4 and a window size chosen by `swin_window` so that every
    stage's token grid is a whole number of windows. At 40x40: grids 20 -> 10 -> 5 -> 5
    with window 5 (4x4, 2x2, 1x1, 1x1 windows; shifted by 2 in stages 1-2, unshifted in
    stages 3-4 where one window covers the grid, exactly as torchvision does whenever the
    window is not smaller than the grid). A 2x2 patch merge of the odd 5x5 grid would pad it
    to 6x6 with zero tokens, so the last merge is replaced by `ChannelExpansion`
    (LayerNorm + Linear(C, 2C), grid kept): the final token grid is 5x5 with 768 channels.
    Other image sizes follow the rules of `swin_grids` / `swin_window`, falling back on
    torchvision's zero padding where no window tiles every grid. `imagenet` is torchvision's
    swin_t (patch 4, window 7; at 40x40 its grids 10-5-3-2 are zero-padded to window
    multiples). `drop_path` is torchvision's `stochastic_depth_prob` (block i of N gets
    drop_path * i / (N - 1); its default 0.2 is NOT used).
"""
from __future__ import annotations

from functools import partial

from torch import Tensor, nn
from torchvision.models import efficientnet_b7
from torchvision.models.swin_transformer import PatchMerging, SwinTransformer

# ---------------------------------------------------------------- EfficientNet-B7


def build_efficientnet_b7(stem: str, in_channels: int, drop_path: float) -> tuple[nn.Module, int]:
    model = efficientnet_b7(weights=None, stochastic_depth_prob=drop_path)
    old = model.features[0][0]  # Conv2dNormActivation's conv: 3 -> 64, 3x3/2, no bias
    width = old.out_channels
    if stem == "k3":
        conv = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
    elif stem == "k4":
        conv = nn.Conv2d(in_channels, width, kernel_size=4, stride=1, padding=0, bias=False)
    else:  # imagenet: torchvision's conv, only the input channels may differ
        conv = nn.Conv2d(in_channels, width, kernel_size=3, stride=2, padding=1, bias=False)
    model.features[0][0] = conv
    features = model.classifier[-1].in_features
    return model, features


# ---------------------------------------------------------------- Swin-T

SWIN_T = dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24])


class ChannelExpansion(nn.Module):
    """Takes PatchMerging's place where the token grid is odd: doubles the channels
    (LayerNorm + Linear(C, 2C), no bias, as PatchMerging) but keeps the grid, so no
    zero-padded tokens enter the network. Works on [..., H, W, C]."""

    def __init__(self, dim: int, norm_layer=nn.LayerNorm) -> None:
        super().__init__()
        self.norm = norm_layer(dim)
        self.reduction = nn.Linear(dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.reduction(self.norm(x))


def swin_grids(first: int, stages: int = 4) -> list[int]:
    """Token grid side per stage. A grid is halved by PatchMerging unless it is odd and at
    most 7 (one Swin window): then it is kept and only the channels double (ChannelExpansion).
    Larger odd grids (other image sizes) are halved with torchvision's zero padding."""
    grids = [first]
    for _ in range(stages - 1):
        g = grids[-1]
        grids.append(g if g % 2 == 1 and g <= 7 else (g + 1) // 2)
    return grids


def swin_window(grids: list[int], largest: int = 7) -> int:
    """The largest window (<= 7, Swin's) that tiles every stage's grid exactly; 7 (and
    torchvision's zero padding) when none does."""
    for w in range(largest, 1, -1):
        if all(g % w == 0 for g in grids):
            return w
    return largest


def build_swin_t(stem: str, in_channels: int, drop_path: float, image_size: int) -> tuple[nn.Module, int]:
    if stem == "imagenet":
        patch, window = 4, 7
        grids = None
    else:
        patch = 2
        grids = swin_grids(image_size // patch)
        window = swin_window(grids)
    model = SwinTransformer(patch_size=[patch, patch], window_size=[window, window],
                            stochastic_depth_prob=drop_path, **SWIN_T)
    embed = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_channels, embed.out_channels, kernel_size=patch, stride=patch)
    if grids is not None:
        # features = [embed, stage1, merge, stage2, merge, stage3, merge, stage4]
        norm_layer = partial(nn.LayerNorm, eps=1e-5)  # torchvision's default for Swin
        for stage, index in enumerate((2, 4, 6)):
            if grids[stage + 1] == grids[stage]:
                merge = model.features[index]
                assert isinstance(merge, PatchMerging)
                model.features[index] = ChannelExpansion(merge.dim, norm_layer)
    model.token_grids = grids if grids is not None else []
    model.window = window
    return model, model.head.in_features
