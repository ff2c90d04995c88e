"""Weight initialisation schemes, applied to the whole model after it is built.

* `he_normal` (the seed's "variance initialisation"): every Conv1d/2d/3d and Linear weight
  is drawn from N(0, 2 / fan_in), fan_in = in_channels / groups * kernel area for a conv
  and in_features for a Linear (so a depthwise 3x3 conv has fan_in 9); their biases are 0;
  every BatchNorm / GroupNorm / LayerNorm has weight 1 and bias 0. This includes the
  classifier and, for swin_t, the attention and MLP Linears. It differs from torchvision's
  own ResNet/EfficientNet init (Kaiming normal with fan_OUT for convs) and from swin's
  truncated N(0, 0.02^2) for Linears; both are overwritten.
* `default`: PyTorch's per-layer default, obtained by calling `reset_parameters()` on
  every submodule that has one, which undoes torchvision's custom init. For Conv and
  Linear that is U[-1/sqrt(fan_in), 1/sqrt(fan_in)] for weights (kaiming_uniform with
  a = sqrt(5)) and biases, the scheme the seed compared against; norms get weight 1, bias 0
  and fresh running statistics.

* `torchvision`: the initialisation torchvision's own builders give each family, re-applied
  to the whole model so that the layers lowres replaced (stem, head) follow it too: convs
  Kaiming normal with fan_OUT, norms weight 1 / bias 0, and Linear layers as the family does
  (ResNets and the small nets: PyTorch's default; EfficientNet: U[-1/sqrt(out), 1/sqrt(out)];
  Swin: truncated N(0, 0.02^2), bias 0). This is most likely what the seed's `resnet50()`
  actually ran with when it did not override the init ("default" is the scheme it names).

Parameters that do not belong to a layer with `reset_parameters` keep the value their
model gave them under both schemes; in this zoo that is only swin_t's relative-position
bias tables (truncated normal, std 0.02).
"""
from __future__ import annotations

from torch import nn

INITS = ("he_normal", "default", "torchvision")

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def apply_init(model: nn.Module, scheme: str, family: str = "") -> None:
    """Initialise `model` in place; `family` (the model name) matters for `torchvision`."""
    if scheme == "torchvision":
        _torchvision_init(model, family)
    elif scheme == "he_normal":
        for m in model.modules():
            if isinstance(m, _WEIGHTED):
                # fan_in mode with the ReLU gain sqrt(2) gives exactly std = sqrt(2 / fan_in);
                # PyTorch's fan_in of a conv weight [out, in/groups, kh, kw] is in/groups*kh*kw.
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _NORMS):
                _unit_norm(m)
    elif scheme == "default":
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    else:
        raise ValueError(f"unknown init {scheme!r}")  # the zoo validates before we get here


def _unit_norm(m: nn.Module) -> None:
    """A norm layer that starts as the identity: weight 1, bias 0."""
    if m.weight is not None:
        nn.init.ones_(m.weight)
    if m.bias is not None:
        nn.init.zeros_(m.bias)


def _torchvision_init(model: nn.Module, family: str) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS):
            _unit_norm(m)
        elif isinstance(m, nn.Linear):
            if family.startswith("efficientnet"):
                bound = 1.0 / m.out_features ** 0.5
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)
            elif family.startswith("swin"):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            else:
                m.reset_parameters()
