"""What every augmentation op shares: its parameter table, the build context, and the
helper that runs an operation on the subset of samples that drew it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from lowres.augment.params import Param


@dataclass(frozen=True)
class Context:
    """Dataset facts some ops need (erasing with the mean colour, soft targets)."""
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    num_classes: int = 0


class Op:
    """An image op: float images [B, C, H, W] in 0..1 -> augmented images, same shape.

    An op may overwrite the tensor it is given (the pipeline owns it: a fresh float copy
    of the input batch), which saves a full copy of the batch per op.

    Subclasses set `name` (the config spelling) and `PARAMS`; the registry validates the
    config values and passes them, normalised, as keyword arguments.
    """

    name: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}
    mixes: ClassVar[bool] = False  # True for ops that also turn labels into soft targets

    def __init__(self, context: Context, **params: Any) -> None:
        self.context = context
        self.params = params
        for key, value in params.items():
            setattr(self, key, value)

    @classmethod
    def check_combination(cls, key: str, params: dict[str, Any]) -> None:
        """Checks that involve several parameters; `key` names the op's config entry."""

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.params.items())
        return f"{self.name}({shown})"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, list):
        return "[" + ", ".join(v.describe() if isinstance(v, Op) else _show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def apply_to_subset(images: Tensor, selected: Tensor,
                    fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Run fn(images[idx], idx) on the samples where `selected` ([B] bool) is True and
    write the results back into `images` (in place); the others are left unchanged.
    Cheaper than computing the op for the whole batch and choosing with torch.where when
    few samples are selected. (On CUDA the subset size costs one synchronisation.)"""
    index = selected.nonzero().squeeze(1)
    if index.numel() == 0:
        return images
    if index.numel() == images.shape[0]:
        return fn(images, index)
    return images.index_copy_(0, index, fn(images.index_select(0, index), index))
