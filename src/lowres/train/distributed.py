"""Scale-out on PyTorch's own engine: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK, we join.

World size 1 (plain `lowres train`) uses the same code path with no process group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum numbers over ranks (float64 on the CPU/gloo or the GPU/nccl)."""
        if self.world_size == 1:
            return values
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast_from_main(self, values: list[float]) -> list[float]:
        """Rank 0's numbers on every rank (NaN passes through): decisions taken from them
        (an LR drop, a stage end, the best epoch) are then the same everywhere."""
        if self.world_size == 1:
            return values
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.broadcast(t, src=0)
        return t.tolist()

    def broadcast_object_from_main(self, value):
        """Rank 0's picklable value (e.g. a dict of epoch metrics) on every rank."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_flag(self, flag: bool) -> bool:
        """True on every rank when any rank says True (a signal seen by one stops all)."""
        if self.world_size == 1:
            return flag
        return self.all_reduce_sum([1.0 if flag else 0.0])[0] > 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init() -> Context:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("LOWRES_BACKEND") != "gloo" \
            else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return Context(rank=rank, world_size=world, local_rank=local_rank)


def shutdown(ctx: Context) -> None:
    if ctx.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
