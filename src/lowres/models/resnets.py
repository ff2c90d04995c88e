"""ResNet family for low-resolution input: torchvision's ResNet with a swappable stem,
stochastic depth on the residual branch and an optional width multiplier.

The networks are torchvision's `ResNet` class; only three things are added:

* the stem (`stems.py`: `k4`, `k3` or `imagenet`) in place of torchvision's.
* `DropPathBasicBlock` / `DropPathBottleneck`: torchvision's blocks whose residual branch
  goes through a per-sample `StochasticDepth` before the addition (identity when off).
* `LowResResNet`: a `ResNet` whose stage widths (and stem width) are multiplied by an
  integer, for the seed's "ResNet34 with doubled width"; it is plain ResNet at 1.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops import StochasticDepth

from lowres.models.stems import STEMS, make_stem, set_stem


class _DropPathResidual:
    """The residual sum of torchvision's blocks with the branch dropped per sample when
    training (`drop_path`, an Identity until `set_drop_path` gives it a rate)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.drop_path: nn.Module = nn.Identity()

    def _add_residual(self, x: Tensor, out: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.drop_path(out) + identity)


class DropPathBasicBlock(_DropPathResidual, BasicBlock):
    """torchvision's BasicBlock with a droppable residual branch."""

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self._add_residual(x, self.bn2(self.conv2(out)))


class DropPathBottleneck(_DropPathResidual, Bottleneck):
    """torchvision's Bottleneck (v1.5: stride on the 3x3) with a droppable residual branch."""

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._add_residual(x, self.bn3(self.conv3(out)))


RESIDUAL_BLOCKS = (DropPathBasicBlock, DropPathBottleneck)


def set_drop_path(model: nn.Module, rate: float, block_types: tuple[type, ...] = ()) -> None:
    """Give the residual blocks of `model` drop rates rising linearly from 0 (first block)
    to `rate` (last block), as in the stochastic-depth paper's linear decay rule.

    `StochasticDepth(p, "row")` zeroes a sample's branch with probability p and scales the
    kept ones by 1/(1-p) in training, and is the identity in eval mode. Blocks that end up
    with p = 0 (all of them when rate = 0) keep a plain Identity, so rate 0 costs nothing.
    `block_types` names other block classes with a `drop_path` attribute (models/cifar.py).
    """
    blocks = [m for m in model.modules() if isinstance(m, block_types or RESIDUAL_BLOCKS)]
    for i, block in enumerate(blocks):
        p = rate * i / (len(blocks) - 1) if len(blocks) > 1 else rate
        block.drop_path = StochasticDepth(p, "row") if p > 0 else nn.Identity()


class LowResResNet(ResNet):
    """torchvision's ResNet with every stage (and the stem) `width_mult` times wider.

    torchvision hard-codes 64-128-256-512; widening a BasicBlock network through
    `width_per_group` is refused by BasicBlock, so the planes are scaled in `_make_layer`.
    `fc` is left at torchvision's size here and replaced by the zoo's head afterwards.
    """

    def __init__(self, block: type, layers: list[int], width_mult: int = 1, **kwargs) -> None:
        self.width_mult = width_mult  # plain attribute: set before nn.Module.__init__ is fine
        super().__init__(block, layers, **kwargs)
        self.stem_width = 64 * width_mult
        self.num_features = 512 * width_mult * block.expansion

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False) -> nn.Sequential:
        if planes == 64 and self.inplanes == 64:
            # layer1 reads the stem's output; the stem is widened too (rebuilt by set_stem)
            self.inplanes = 64 * self.width_mult
        return super()._make_layer(block, planes * self.width_mult, blocks, stride, dilate)


# name -> (block, layers, width_mult, ResNet kwargs, one-line summary)
RESNETS: dict[str, tuple[type, list[int], int, dict, str]] = {
    "resnet18": (DropPathBasicBlock, [2, 2, 2, 2], 1, {},
                 "torchvision ResNet-18 (BasicBlock 2-2-2-2, 64-512 wide)"),
    "resnet34": (DropPathBasicBlock, [3, 4, 6, 3], 1, {},
                 "torchvision ResNet-34 (BasicBlock 3-4-6-3, 64-512 wide)"),
    "resnet34_wide": (DropPathBasicBlock, [3, 4, 6, 3], 2, {},
                      "ResNet-34 with every layer twice as wide (128-1024), the seed's widened try"),
    "resnet50": (DropPathBottleneck, [3, 4, 6, 3], 1, {},
                 "torchvision ResNet-50 v1.5 (Bottleneck 3-4-6-3), the seed's final model"),
    "wide_resnet50_2": (DropPathBottleneck, [3, 4, 6, 3], 1, {"width_per_group": 128},
                        "torchvision Wide ResNet-50-2 (bottleneck inner width doubled)"),
    "resnext50_32x4d": (DropPathBottleneck, [3, 4, 6, 3], 1, {"groups": 32, "width_per_group": 4},
                        "torchvision ResNeXt-50 32x4d (grouped 3x3 convs)"),
}


def build_resnet(name: str, stem: str, in_channels: int, drop_path: float) -> tuple[LowResResNet, int]:
    """The ResNet `name` with `stem`; returns (model, number of pooled features).

    The caller replaces `model.fc` with the configured head and applies the init.
    """
    block, layers, width_mult, kwargs, _ = RESNETS[name]
    model = LowResResNet(block, layers, width_mult=width_mult, **kwargs)
    set_stem(model, stem, in_channels, model.stem_width)
    set_drop_path(model, drop_path)
    return model, model.num_features


def feature_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Shapes after the stem and after each stage (used by tests and docs)."""
    out = {}
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    out["stem"] = tuple(x.shape)
    for name in ("layer1", "layer2", "layer3", "layer4"):
        if hasattr(model, name):
            x = getattr(model, name)(x)
            out[name] = tuple(x.shape)
    return out


__all__ = ["STEMS", "make_stem", "set_stem", "set_drop_path", "build_resnet", "RESNETS",
           "DropPathBasicBlock", "DropPathBottleneck", "LowResResNet", "feature_shapes"]
