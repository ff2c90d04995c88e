"""Peak training memory of a model at a batch size, estimated on the CPU before any GPU.

Method (its figures are checked against `torch.cuda.max_memory_allocated` by `make
gpu-check`):
- the fixed part: fp32 parameters, their gradients, the optimizer's state (SGD momentum: one
  copy; Adam/AdamW/LAMB-like: two) and the EMA copy when `train.ema` is on;
- the activations: every tensor autograd saves for the backward during one training forward
  (`torch.autograd.graph.saved_tensors_hooks`, each storage counted once), measured under
  autocast at batch 2 and 4 on the CPU. Their difference is the per-image cost; what does
  not grow with the batch (autocast's low-precision weight copies) is fixed. bf16 and fp16
  have the same width, so a bf16 CPU autocast stands for both.
- a margin (`MARGIN`) for the caching allocator's rounding, cuDNN workspaces and the
  backward's transient buffers; the CUDA context itself (~0.3-0.5 GiB) is outside
  max_memory_allocated and is kept out of the card's usable memory (`USABLE`);
- the dataset, when it is kept on the GPU (`data.resident`, train/device.py: the uint8
  images, e.g. 0.45 GiB for 100k of 40x40x3), is not room for a batch: `largest_batch` and
  `line` take its bytes (`resident_bytes`). `peak_bytes` is the training alone, what `make
  gpu-check` measures on random batches.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

# Activations and transient buffers: an assumption, not yet a measurement. No GPU has run
# `make gpu-check` yet (benchmarks/RESULTS.md, "GPU"); its first run compares estimated_peak_gib
# with the measured peak_memory_gib, and this figure is to be set from that.
MARGIN = 1.25
USABLE = 0.90  # of the card's total memory: the CUDA context and fragmentation take the rest
STATE_COPIES = {"sgd": 1}  # optimizer state per parameter, in fp32 copies (others: 2, Adam-like)


@dataclass(frozen=True)
class MemoryEstimate:
    fixed_bytes: int  # parameters, gradients, optimizer state, EMA, autocast weight copies
    per_image_bytes: int  # saved activations per image, with the margin

    def peak_bytes(self, batch: int) -> int:
        return self.fixed_bytes + batch * self.per_image_bytes

    def largest_batch(self, card_bytes: int, resident_bytes: int = 0) -> int:
        """The largest batch whose estimate fits a card of this much memory beside
        `resident_bytes` of dataset kept on it (0: none)."""
        room = USABLE * card_bytes - self.fixed_bytes - resident_bytes
        return max(0, int(room // self.per_image_bytes))

    def line(self, batch: int, card_bytes: int = 16 << 30, card: str = "a 16 GB card",
             resident_bytes: int = 0) -> str:
        peak = self.peak_bytes(batch)
        fits = peak + resident_bytes <= USABLE * card_bytes
        beside = f" beside the dataset {resident_bytes / 2**30:.2f} GiB" if resident_bytes else ""
        return (f"estimated peak GPU memory {peak / 2**30:.1f} GiB at batch {batch}{beside} "
                f"({'fits' if fits else 'does not fit'} {card}; the largest batch that fits: "
                f"{self.largest_batch(card_bytes, resident_bytes)})")


def _saved_bytes(model: torch.nn.Module, x: torch.Tensor, amp: bool) -> int:
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        model(x)
    return sum(storages.values())


def _cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    memo = {id(p): torch.nn.Parameter(p.detach().to("cpu")) for p in model.parameters()}
    memo.update({id(b): b.detach().to("cpu") for b in model.buffers()})
    return copy.deepcopy(model, memo)


def estimate(model: torch.nn.Module, image_shape: tuple[int, int, int], optimizer: str = "sgd",
             ema: bool = False, amp: bool = True) -> MemoryEstimate:
    """The estimate for `model` (not modified: a CPU copy is measured) on images of
    `image_shape` (C, H, W); `amp` = bf16/fp16 autocast, else fp32 activations."""
    # The copy is made on the CPU, parameter by parameter: a whole GPU copy might not fit.
    probe = copy.deepcopy(model) if next(model.parameters()).device.type == "cpu" else _cpu_copy(model)
    probe = probe.to(memory_format=torch.channels_last).train()
    params = sum(p.numel() * p.element_size() for p in probe.parameters())
    copies = 2 + STATE_COPIES.get(optimizer, 2) + (1 if ema else 0)  # weights, grads, state, EMA
    # Batches of 2 and 4: batch norm refuses one value per channel (an SE block's 1x1 map).
    two, four = (_saved_bytes(probe, torch.zeros(n, *image_shape), amp) for n in (2, 4))
    per_image = max((four - two) // 2, 1)
    fixed = copies * params + max(two - 2 * per_image, 0)
    return MemoryEstimate(fixed_bytes=int(fixed), per_image_bytes=int(per_image * MARGIN))
