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
