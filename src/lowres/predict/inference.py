"""A trained model as one self-contained module: uint8 images in, class probabilities out.

The normalisation (the training images' exact mean and std) is inside, so a caller, an
ONNX runtime or a TorchScript loader needs nothing but the images. `lowres export` writes
this module, and `lowres.load_run(...).model()` returns it.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from lowres import config as config_mod
from lowres.models import build_model
from lowres.run import checkpoint


class ProbabilityModel(nn.Module):
    """[N, C, H, W] uint8 (0..255) -> [N, classes] float32 probabilities."""

    def __init__(self, model: nn.Module, mean: list[float], std: list[float], channels: int,
                 class_names: list[str]) -> None:
        super().__init__()
        mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        if mean_t.numel() != channels:  # a grey dataset described by RGB statistics (as the pipeline)
            mean_t, std_t = mean_t.mean().expand(channels), std_t.mean().expand(channels)
        # Stored as scale and shift, the pipeline's own arithmetic: x * (1/std) + (-mean/std).
        self.register_buffer("scale", (1.0 / std_t).reshape(1, channels, 1, 1).clone())
        self.register_buffer("shift", (-mean_t / std_t).reshape(1, channels, 1, 1).clone())
        self.model = model
        self.class_names = list(class_names)

    def forward(self, images: Tensor) -> Tensor:
        x = images.to(torch.float32) * (1.0 / 255.0)
        x = x * self.scale + self.shift
        return self.model(x).softmax(dim=1)


def load_probability_model(run_dir: str | Path, which: str = "best") -> tuple[ProbabilityModel, dict]:
    """The run's `which` checkpoint as an eval-mode ProbabilityModel on the CPU, and the
    checkpoint's data description (class names, image shape, mean, std)."""
    state = checkpoint.load(checkpoint.find(run_dir, which))
    cfg = config_mod.build(state["config"], require_root=False)
    meta = state["data"]
    c, h, _ = meta["image_shape"]
    model = build_model(cfg.model, len(meta["class_names"]), in_channels=c, image_size=h)
    model.load_state_dict(state["model"])
    wrapped = ProbabilityModel(model, meta["mean"], meta["std"], c, meta["class_names"]).eval()
    return wrapped, meta
