"""The augmentation pipeline: image ops in spec order, then at most one mix op, then
normalisation. Works on whole batches on the images' device, one random draw per sample."""
from __future__ import annotations

import sys
from typing import Sequence

import torch
from torch import Tensor

from lowres.augment.base import Context, Op, constant
from lowres.augment.cpu_memory import retain_freed_memory
from lowres.augment.mix import MixOp, check_num_classes
from lowres.augment.spec import parse_spec
from lowres.errors import compile_failure


def to_float(images: Tensor) -> Tensor:
    """uint8 0..255 or float 0..1 -> float32 0..1 (a new tensor)."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).mul_(1.0 / 255.0)  # mul: much faster than div on CPU
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or float, got {images.dtype}")
    return images.to(torch.float32, copy=True)


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are the same; an index-less CUDA device means the current one
    (torch.Generator(device="cuda").device has no index, its tensors do)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return a.index == b.index or None in (a.index, b.index)
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


class Pipeline:
    def __init__(self, ops: list[Op], mean: Sequence[float], std: Sequence[float],
                 num_classes: int) -> None:
        self.image_ops = [op for op in ops if not op.mixes]
        mix_ops = [op for op in ops if op.mixes]
        self.mix_op: MixOp | None = mix_ops[0] if mix_ops else None
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.num_classes = num_classes
        self._apply = self.apply_ops

    @property
    def mixes(self) -> bool:
        """True when `augment` returns soft targets [B, num_classes] instead of labels."""
        return self.mix_op is not None

    def augment(self, images: Tensor, labels: Tensor,
                generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Augmented float32 images in 0..1 (not normalised) and the targets."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images [B, 1 or 3, H, W], got {tuple(images.shape)}")
        if not same_device(images.device, generator.device):
            raise ValueError(f"images are on {images.device} but the generator on {generator.device}")
        if images.device.type == "cpu":
            retain_freed_memory()  # once per process: see cpu_memory
        # Every draw first, then the ops: the same random numbers as drawing op by op
        # (apply draws none), and the apply part is a pure function of tensors.
        drawn = [op.draw(generator, tuple(images.shape)) for op in self.image_ops]
        x = self._run_ops(to_float(images), drawn)
        if self.mix_op is None:
            return x, labels
        return self.mix_op.mix(x, labels, generator)

    def apply_ops(self, x: Tensor, drawn: list) -> Tensor:
        for op, draws in zip(self.image_ops, drawn):
            x = op.apply(x, draws)
        return x

    def _run_ops(self, x: Tensor, drawn: list) -> Tensor:
        if self._apply is self.apply_ops:
            return self.apply_ops(x, drawn)
        try:
            return self._apply(x, drawn)
        except Exception as exc:  # noqa: BLE001 (eager decides whether it was the compiler)
            result = self.apply_ops(x, drawn)
            print(f"lowres: compiling the augmentation failed ({compile_failure(exc)}); continuing "
                  f"without it", file=sys.stderr)
            self._apply = self.apply_ops
            return result

    def compile_ops(self) -> None:
        """Run the ops as one compiled graph (torch.compile, fixed shapes). In "where" mode
        they are a few hundred small kernels per batch; fused, far fewer launches. Only
        the sync-free "where" mode can be one graph (`fullgraph`: a break is an error)."""
        self._apply = torch.compile(self.apply_ops, dynamic=False, fullgraph=True)

    def normalize(self, images: Tensor) -> Tensor:
        """uint8/float images -> (x - mean) / std, float32; no randomness."""
        return self._normalize_(to_float(images))

    def _normalize_(self, x: Tensor) -> Tensor:
        """Normalise float images in place: x * (1 / std) + (-mean / std)."""
        c = x.shape[1]
        mean = constant(self.mean, x.device, x.dtype)
        std = constant(self.std, x.device, x.dtype)
        if mean.numel() != c:  # e.g. a grey dataset described by an RGB mean
            mean, std = mean.mean().expand(c), std.mean().expand(c)
        return x.mul_((1.0 / std).reshape(1, c, 1, 1)).add_((-mean / std).reshape(1, c, 1, 1))

    def __call__(self, images: Tensor, labels: Tensor,
                 generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x, targets = self.augment(images, labels, generator)
        return self._normalize_(x), targets  # x is our own tensor: no copy needed

    def describe(self) -> str:
        lines = [op.describe() for op in self.image_ops]
        if self.mix_op is not None:
            lines.append(self.mix_op.describe())
        mean = ", ".join(f"{m:.4f}" for m in self.mean)
        std = ", ".join(f"{v:.4f}" for v in self.std)
        lines.append(f"normalize(mean=[{mean}], std=[{std}]) with the training images' statistics")
        return "\n".join(lines)


def build_pipeline(spec: list[dict], mean: Sequence[float], std: Sequence[float],
                   num_classes: int) -> Pipeline:
    """Validate `spec` and build the pipeline (raises ConfigError on a bad spec)."""
    parsed = parse_spec(spec, "augment")
    context = Context(tuple(mean), tuple(std), int(num_classes))
    if any(cls.mixes for cls, _ in parsed):
        check_num_classes(num_classes, "data.num_classes")
    ops = [cls(context, **params) for cls, params in parsed]
    return Pipeline(ops, mean, std, num_classes)
