"""Classifier heads, shared by every model in the zoo.

* `linear`: Dropout(p) -> Linear(F, classes). The seed put Dropout(0.8) in front of
  ResNet-50's final Linear; p = `model.dropout`.
* `mlp`: Dropout(p) -> Linear(F, H) -> BatchNorm1d(H) -> ReLU -> Linear(H, classes), the
  seed's experiment 5, H = `model.head_hidden`. The Linears keep their bias (nn.Linear's
  default, as in the seed), although the BN makes the first one's redundant. BatchNorm1d
  needs more than one sample per batch in training mode.

Both heads take the pooled, flattened feature vector [B, F]. The Dropout is always present
(p may be 0) so the head's layout does not depend on the dropout value.
"""
from __future__ import annotations

from torch import nn

HEADS = ("linear", "mlp")


def make_head(kind: str, features: int, num_classes: int, dropout: float, hidden: int) -> nn.Sequential:
    if kind == "linear":
        return nn.Sequential(nn.Dropout(p=dropout), nn.Linear(features, num_classes))
    if kind == "mlp":
        return nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
    raise ValueError(f"unknown head {kind!r}")  # the zoo validates before we get here
