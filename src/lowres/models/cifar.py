"""The small-image classics timm lacks: Wide ResNet WRN-d-k and PreAct ResNet-18.

Both are pre-activation networks in their published CIFAR shapes: a 3x3 stride-1 stem
(`model.stem=k3`; `k4` and `imagenet` are honoured literally, as for every zoo model),
no max-pool, three (WRN) or four (PreAct) stages, a final BN-ReLU, global average pooling
and the zoo's head.

* WRN-d-k (Zagoruyko & Komodakis 2016): n = (d - 4) / 6 pre-activation basic blocks per
  stage, widths 16 (stem) then 16k, 32k, 64k with strides 1, 2, 2; a 1x1 projection where
  the shape changes. At 40x40 with the k3 stem the maps are 40, 20, 10. WRN-28-10 is the
  paper's best CIFAR model (36.5M parameters).
* PreAct ResNet-18 (He et al. 2016, "Identity mappings"): 2-2-2-2 pre-activation basic
  blocks of 64-128-256-512 with strides 1, 2, 2, 2 (maps 40, 20, 10, 5 with k3).

`drop_path` is per-sample stochastic depth on each block's residual branch, rising
linearly to the configured rate over the blocks (the rule of `resnets.set_drop_path`).
"""
from __future__ import annotations

from torch import Tensor, nn

from lowres.models.resnets import make_stem, set_drop_path


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 with an identity (or 1x1 projection) shortcut taken
    after the first BN-ReLU where the shape changes, as in the pre-activation paper."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or inplanes != planes:
            self.shortcut = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
        self.drop_path: nn.Module = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        return self.drop_path(out) + identity


class PreActNet(nn.Module):
    """Stem conv, pre-activation stages, final BN-ReLU, global average pool, `fc` head."""

    def __init__(self, widths: list[int], blocks: list[int], strides: list[int], stem_width: int,
                 stem: str, in_channels: int) -> None:
        super().__init__()
        self.conv1, self.maxpool = make_stem(stem, in_channels, stem_width)
        stages, inplanes = [], stem_width
        for width, count, stride in zip(widths, blocks, strides):
            layers = [PreActBlock(inplanes, width, stride)]
            layers += [PreActBlock(width, width) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            inplanes = width
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = inplanes
        self.fc: nn.Module = nn.Linear(inplanes, 1)  # replaced by the zoo's head

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(self.maxpool(self.conv1(x)))
        x = self.pool(self.relu(self.bn(x))).flatten(1)
        return self.fc(x)


def wide_resnet(depth: int, widen: int, stem: str, in_channels: int) -> PreActNet:
    if (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n+4, got {depth}")
    n = (depth - 4) // 6
    return PreActNet([16 * widen, 32 * widen, 64 * widen], [n] * 3, [1, 2, 2], 16, stem, in_channels)


def preact_resnet18(stem: str, in_channels: int) -> PreActNet:
    return PreActNet([64, 128, 256, 512], [2, 2, 2, 2], [1, 2, 2, 2], 64, stem, in_channels)


def _wrn_entry(depth: int, widen: int):
    return (lambda stem, in_channels: wide_resnet(depth, widen, stem, in_channels),
            f"Wide ResNet WRN-{depth}-{widen} (CIFAR shape: 3x3/1 stem with stem=k3)")


# name -> (builder(stem, in_channels), one-line summary), in the order `lowres models` lists them
CIFAR_NETS = {
    **{f"wrn{d}_{k}": _wrn_entry(d, k) for d, k in ((16, 4), (16, 8), (28, 10), (40, 4))},
    "preact_resnet18": (preact_resnet18, "PreAct ResNet-18 (CIFAR shape: 3x3/1 stem with stem=k3)"),
}


def build_cifar_net(name: str, stem: str, in_channels: int, drop_path: float) -> PreActNet:
    model = CIFAR_NETS[name][0](stem, in_channels)
    set_drop_path(model, drop_path, (PreActBlock,))
    return model
