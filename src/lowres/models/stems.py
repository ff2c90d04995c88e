"""The stems: the first conv and the pooling after it, shared by the ResNets, the small nets
and the CIFAR classics. `STEMS` is the one list of their names (model.stem's choices).

At 40x40 the ImageNet stem (7x7/2 conv + 3x3/2 max-pool) leaves a 10x10 map for layer1
and 2x2 for layer4, which is what sank the seed's first runs; `k4` keeps 37x37 in layer1.
Only torch.nn here (no torchvision), so the config can read `STEMS` cheaply.
"""
from __future__ import annotations

from torch import nn

STEMS = ("k4", "k3", "imagenet")


def make_stem(stem: str, in_channels: int, width: int) -> tuple[nn.Conv2d, nn.Module]:
    """The stem conv and the module that follows its BN-ReLU (max-pool or identity).

    All three convs have bias=False: a BatchNorm follows, which would cancel a bias anyway.
    (The seed's k3 try used nn.Conv2d's default bias=True; that only adds `width` parameters
    that BN makes redundant.)
    """
    if stem == "k4":  # the seed's final: 40x40 -> 37x37, no pooling
        return nn.Conv2d(in_channels, width, kernel_size=4, stride=1, padding=0, bias=False), nn.Identity()
    if stem == "k3":  # the seed's first try: 40x40 -> 40x40, no pooling
        return nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False), nn.Identity()
    if stem == "imagenet":  # torchvision's: 40x40 -> 20x20 -> 10x10
        return (nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    raise ValueError(f"unknown stem {stem!r}")  # the zoo validates before we get here


def set_stem(model: nn.Module, stem: str, in_channels: int, width: int) -> None:
    """Replace `conv1`, `bn1` and `maxpool` of a ResNet-shaped model in place."""
    model.conv1, model.maxpool = make_stem(stem, in_channels, width)
    model.bn1 = nn.BatchNorm2d(width)
