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
    threads = rank_threads(os.environ, os.cpu_count())
    if threads is not None:  # a CPU device sets its own again (train.threads), a GPU's keeps this
        torch.set_num_threads(threads)
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("LOWRES_BACKEND") != "gloo" \
            else "gloo"
        bound = {}
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
            # The group's GPU, said once (torch >= 2.3): collectives need not guess it from
            # the rank, and recent torch warns when they do. Never for gloo: torch 2.4 refuses
            # a device_id that is not a CUDA device with an index.
            bound["device_id"] = torch.device("cuda", local_rank)
        dist.init_process_group(backend=backend, **bound)
    return Context(rank=rank, world_size=world, local_rank=local_rank)


def rank_threads(environ, cpu_count: int | None) -> int | None:
    """torch's thread count for one of the processes on this machine: an equal share of its
    cores (at least 1). None (leave torch's choice) for a single process, or where
    OMP_NUM_THREADS is set: by the user, or by torchrun (1). torch's elastic launcher, which
    `--devices` uses, sets none, so without this every rank would take every core."""
    if "OMP_NUM_THREADS" in environ:
        return None
    local = int(environ.get("LOCAL_WORLD_SIZE") or environ.get("WORLD_SIZE") or 1)
    if local <= 1:
        return None
    return max(1, (cpu_count or 1) // local)


def shutdown(ctx: Context) -> None:
    if ctx.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
