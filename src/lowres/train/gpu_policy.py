"""What each GPU generation gets by default: one table, compute capability -> choices.

`train.precision`, `train.compile` and `train.channels_last` left on `auto` follow the row of
the GPU's compute capability (the newest row it reaches); TF32 has no key and follows the
row too. A choice the hardware cannot make (bf16 before sm_80, torch.compile before sm_70)
is a one-line ConfigError when forced, never a failure an hour in.

Sources, per column:
- bf16: NVIDIA's Ampere architecture whitepaper (bf16 tensor-core math from sm_80); before
  it torch emulates bf16 slowly, or fails in cuDNN.
- fp16 + grad scaler: Volta (sm_70) and Turing (sm_75) tensor cores run fp16 only; fp16's
  narrow range needs loss scaling (torch.amp.GradScaler, the torch AMP recipe).
- fp32 on Pascal: no tensor cores. The P100 (sm_60) has a 2x fp16 rate but our fp16 path
  has not been measured there (the GTX 10xx, sm_61, run fp16 at 1/64 rate): fp32 until a
  measurement says otherwise; `train.precision=fp16` stays allowed.
- compile: Inductor generates Triton kernels, and Triton supports compute capability 7.0
  and up (torch raises "too old to be supported by the triton GPU compiler" below).
- channels_last: NHWC is what tensor cores consume (cuDNN's convolution guide); without
  tensor cores (Pascal) cuDNN's NHWC kernels are no faster, often slower.
- TF32: Ampere's tensor-core float32 (sm_80 and up); nothing to switch on before.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Generation:
    name: str
    capability: tuple[int, int]  # the oldest compute capability the row covers
    examples: str
    precision: str  # "bf16" | "fp16" | "fp32"
    compile: bool
    channels_last: bool
    tf32: bool
    precision_why: str  # completes "<precision>: the <GPU> (sm_XY) ..."


GENERATIONS = (  # newest first: a GPU takes the first row whose capability it reaches
    Generation("Ampere and newer", (8, 0), "A100, A10, L4, RTX 30xx/40xx, H100, H200",
               precision="bf16", compile=True, channels_last=True, tf32=True,
               precision_why="has bf16 tensor cores (fp32's range: no grad scaler)"),
    Generation("Volta/Turing", (7, 0), "V100, T4, RTX 20xx",
               precision="fp16", compile=True, channels_last=True, tf32=False,
               precision_why="has no bf16 (sm_80+); fp16 tensor cores need the grad scaler"),
    Generation("Pascal and older", (0, 0), "P100, P40, GTX 10xx",
               precision="fp32", compile=False, channels_last=False, tf32=False,
               precision_why="has no tensor cores; fp16 there is unmeasured (train.precision=fp16 "
                             "to try it)"),
)

BF16_FROM = (8, 0)
TRITON_FROM = (7, 0)


def generation(capability: tuple[int, int]) -> Generation:
    return next(row for row in GENERATIONS if tuple(capability) >= row.capability)


@dataclass(frozen=True)
class GpuInfo:
    name: str
    capability: tuple[int, int]
    memory_bytes: int

    @property
    def short_name(self) -> str:
        """'T4' for 'Tesla T4', 'RTX 4090' for 'NVIDIA GeForce RTX 4090'."""
        name = self.name
        for prefix in ("NVIDIA ", "Tesla ", "GeForce "):
            name = name[len(prefix):] if name.startswith(prefix) else name
        return name

    @property
    def sm(self) -> str:
        return f"sm_{self.capability[0]}{self.capability[1]}"

    def describe(self) -> str:
        return f"{self.name}, {self.sm}, {self.memory_bytes / 2**30:.1f} GiB"


def gpu_info(device) -> GpuInfo:
    import torch

    props = torch.cuda.get_device_properties(device)
    return GpuInfo(props.name, (props.major, props.minor), int(props.total_memory))
