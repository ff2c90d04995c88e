"""What differs between the torch versions lowres supports (2.4 to the newest it admits).

Each difference is one function here, so the rest of the code is written for one torch. The
oldest pair (torch 2.4.1, torchvision 0.19.1) is tested in CI (`make test-floor`).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


# The newest torch the whole suite has passed on. CI runs it on torch 2.4.1 with torchvision
# 0.19.1 (the floor, `make test-floor`) and on 2.14.1 with 0.29.1 (`make test`); torch 2.15.0
# with torchvision 0.29.2 passed it once, by hand (2026-12-04), not in CI. pyproject.toml has
# no upper bound: a newer torch is kept, and gets one line (newer_torch_warning).
NEWEST_TESTED_TORCH = "2.15.0"
_warned_newer_torch = False  # once per process: a sweep's points, a notebook's cells


def newer_torch_warning() -> str | None:
    """The line for a torch whose major.minor is newer than NEWEST_TESTED_TORCH's, else None
    (a patch release or a local build of a tested version is not news)."""
    newest = tuple(int(p) for p in NEWEST_TESTED_TORCH.split(".")[:2])
    if torch_version() <= newest:
        return None
    return (f"lowres: warning: torch {torch.__version__} is newer than the newest torch lowres was "
            f"tested with ({NEWEST_TESTED_TORCH}); report problems with both versions")


def warn_if_newer_torch(stream) -> None:
    """Print newer_torch_warning() to `stream`, the first time only in this process."""
    global _warned_newer_torch
    line = newer_torch_warning()
    if line and not _warned_newer_torch:
        _warned_newer_torch = True
        print(line, file=stream)


def set_tf32(enabled: bool) -> None:
    """TF32 for float32 matmuls and cuDNN convolutions (and RNNs), on or off. Torches with the
    `fp32_precision` switches get those ("tf32" / "ieee"): the old `allow_tf32` flags warn
    there (torch 2.9) and, mixed with the new switches, make torch raise when either is read.
    Older torches (2.4 has no fp32_precision) get `allow_tf32`."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(cudnn, "conv") and hasattr(matmul, "fp32_precision"):
        precision = "tf32" if enabled else "ieee"
        matmul.fp32_precision = precision
        cudnn.conv.fp32_precision = precision
        cudnn.rnn.fp32_precision = precision  # allow_tf32 covered both: keep them one setting
    else:
        matmul.allow_tf32 = enabled
        cudnn.allow_tf32 = enabled


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """`model.set_submodule(name, module)` (a method only since torch 2.5)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    """ONNX with a dynamic batch axis named "batch": torch.export's exporter (dynamo=True,
    torch >= 2.5), else the TorchScript exporter of torch 2.4 (dynamic_axes)."""
    names = {"input_names": ["images"], "output_names": ["probabilities"], "opset_version": opset}
    if torch_version() >= (2, 5):
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},),
                                    verbose=False, **names)
        program.save(str(path))
    else:
        torch.onnx.export(model, (example,), str(path), dynamic_axes={
            "images": {0: "batch"}, "probabilities": {0: "batch"}}, **names)
