"""Small networks for CPU runs, demos and tests.

Both reuse the ResNet stem (`conv1`, `bn1`, `relu`, `maxpool`, built by `set_stem`), so
`model.stem` means the same here as for the big ResNets, and both end in global average
pooling + the zoo's head, so `head`, `dropout` and `init` apply unchanged.

* `resnet8`: the CIFAR ResNet layout (He et al. 2016, section 4.2) with one BasicBlock per
  stage: stem conv (16) + 3 stages of 16-32-64 channels, strides 1-2-2, a 1x1-conv
  projection where the shape changes. 8 weighted layers on the main path. Its blocks are
  the zoo's drop-path BasicBlocks, so `drop_path` works as for the big ResNets.
* `cnn_small`: a plain conv-BN-ReLU stack in the spirit of the CIFAR-10 speed-run nets
  (the ResNet-9 / airbench layout without the residual blocks): stem (32), then three
  conv3x3-BN-ReLU-maxpool2 stages of 64-128-256 channels. It has no residual branch, so a
  non-zero `drop_path` is refused by the zoo.
"""
from __future__ import annotations

from torch import Tensor, nn

from lowres.models.resnets import DropPathBasicBlock, set_stem


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes))
    layers = [DropPathBasicBlock(inplanes, planes, stride, downsample)]
    layers += [DropPathBasicBlock(planes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class CifarResNet(nn.Module):
    """Three-stage ResNet; `fc` is a placeholder the zoo replaces with the configured head."""

    def __init__(self, stem: str, in_channels: int, widths=(16, 32, 64), blocks=(1, 1, 1)) -> None:
        super().__init__()
        set_stem(self, stem, in_channels, widths[0])
        self.relu = nn.ReLU(inplace=True)
        inplanes = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            setattr(self, f"layer{i + 1}", _stage(inplanes, width, n, 1 if i == 0 else 2))
            inplanes = width
        self.num_stages = len(widths)
        self.num_features = inplanes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def _conv_bn_relu_pool(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class SmallCNN(nn.Module):
    """Stem + conv-BN-ReLU-maxpool stages; `fc` is replaced by the zoo's head."""

    def __init__(self, stem: str, in_channels: int, widths=(32, 64, 128, 256)) -> None:
        super().__init__()
        set_stem(self, stem, in_channels, widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layers = nn.Sequential(*[_conv_bn_relu_pool(a, b) for a, b in zip(widths, widths[1:])])
        self.num_features = widths[-1]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.avgpool(self.layers(x)).flatten(1))


SMALL = {
    "resnet8": (lambda stem, cin: CifarResNet(stem, cin),
                "CIFAR-style ResNet-8 (BasicBlock x1 per stage, 16-32-64), for CPU demos"),
    "cnn_small": (lambda stem, cin: SmallCNN(stem, cin),
                  "plain conv-BN-ReLU-maxpool stack (32-64-128-256), no residuals, for CPU demos"),
}
