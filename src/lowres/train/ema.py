"""An exponential moving average of the weights, evaluated alongside the raw weights."""
from __future__ import annotations

import copy

import torch


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._pairs = [(e, m) for e, m in zip(self.module.parameters(), model.parameters())]
        self._buffers = [(e, m) for e, m in zip(self.module.buffers(), model.buffers())]

    @torch.no_grad()
    def update(self) -> None:
        ema = [e for e, _ in self._pairs]
        raw = [m.detach() for _, m in self._pairs]
        torch._foreach_lerp_(ema, raw, 1.0 - self.decay)
        for e, m in self._buffers:  # BN statistics are copied, not averaged
            e.copy_(m)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
