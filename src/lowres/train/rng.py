"""The random streams a checkpoint carries, and how they come back on another machine.

Three streams matter: torch's CPU generator (initial weights, dropout on the CPU), the
CUDA generator of this process's GPU (dropout on the GPU) and the augmentation generator,
which lives on the training device. A CUDA generator's state (a seed and an offset) and a
CPU one's (a Mersenne twister) are different things, so a run saved on a GPU and resumed
on the CPU, or back, cannot continue the augmentation stream: it is reseeded from where
the run stands, and `restore` says so. Only this process's GPU is touched: reading or
setting every visible GPU's state (`*_rng_state_all`) would create a CUDA context on each
of them from every process, and fail on a machine with fewer GPUs than the saving one.
"""
from __future__ import annotations

import torch

CPU_STATE_BYTES = torch.Generator().get_state().numel()


def capture(augment: torch.Generator, device: torch.device) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "augment": augment.get_state(),
        "augment_device": augment.device.type,
    }


def _saved_device_type(state: dict) -> str:
    # Checkpoints written before the device type was stored: tell by the state's size.
    return state.get("augment_device") or (
        "cpu" if state["augment"].numel() == CPU_STATE_BYTES else "cuda")


def restore(state: dict, augment: torch.Generator, device: torch.device, reseed: int) -> str | None:
    """Put the streams back; returns a one-line note when the augmentation stream had to be
    reseeded (with `reseed`) because the run was saved on another kind of device."""
    torch.set_rng_state(state["torch"])
    cuda_state = state.get("cuda")
    if isinstance(cuda_state, (list, tuple)):  # older checkpoints kept every GPU's state
        index = device.index or 0
        cuda_state = cuda_state[index] if index < len(cuda_state) else None
    if cuda_state is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda_state, device)
    saved = _saved_device_type(state)
    if saved == augment.device.type:
        augment.set_state(state["augment"])
        return None
    augment.manual_seed(reseed)
    return (f"resumed on {device.type} a run saved on {saved}: the augmentation random stream "
            f"starts anew here (the run continues, but not bitwise as it would have on {saved})")
