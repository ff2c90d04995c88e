"""The device policy: one place decides device, precision, memory format, compilation,
where the dataset lives and how augmentation reaches the samples that drew an op.

Everything here is a choice the CPU can also make (bf16 autocast, torch.compile with
Inductor, "where" augmentation, a host-resident dataset), which is how the accelerator
path is tested on machines without one. Code elsewhere reads the policy's fields; the
only other device-type branches are those that cannot be otherwise (pinned memory, CUDA
RNG state, the CUDA synchronisation at an epoch end).

What each GPU generation gets by default is one table, `GENERATIONS` (compute capability ->
choices): `train.precision`, `train.compile` and `train.channels_last` left on `auto`
follow the row of the GPU's compute capability (the newest row it reaches); TF32 has no key
and follows the row too. A choice the hardware cannot make (bf16 before sm_80, torch.compile
or train.compile_augment before sm_70) is a one-line ConfigError when forced, never a failure
an hour in. So is a GPU the installed torch has no kernels for (`kernels_run_on`: Kaggle's
torch lacks sm_60, the P100; the CUDA 12.8+/13 wheels lack sm_70, the V100 too), checked
before anything is built instead of "no kernel image is available" at the first kernel.

Sources, per column of the table:
- bf16: NVIDIA's Ampere architecture whitepaper (bf16 tensor-core math from sm_80); before
  it torch emulates bf16 slowly, or fails in cuDNN.
- fp16 + grad scaler: Volta (sm_70) and Turing (sm_75) tensor cores run fp16 only; fp16's
  narrow range needs loss scaling (torch.amp.GradScaler, the torch AMP recipe).
- fp32 on Pascal: no tensor cores. The P100 (sm_60) has a 2x fp16 rate but our fp16 path
  has not been measured there (the GTX 10xx, sm_61, run fp16 at 1/64 rate): fp32 until a
  measurement says otherwise; `train.precision=fp16` stays allowed.
- compile: Inductor generates Triton kernels. torch's own gate is compute capability 7.0
  (below it Inductor raises "too old to be supported by the triton GPU compiler"), but
  Triton's README lists compute capability 8.0+ as its supported NVIDIA GPUs: on Volta and
  Turing (sm_70, sm_75) it is untested upstream and unmeasured here. So `auto` is eager
  below sm_80 until a T4/V100 measurement says otherwise; `train.compile=yes` (and
  `train.compile_augment=yes`) stays allowed from sm_70, with that said in the plan.
- channels_last: NHWC is what tensor cores consume (cuDNN's convolution guide); without
  tensor cores (Pascal) cuDNN's NHWC kernels are no faster, often slower.
- TF32: Ampere's tensor-core float32 (sm_80 and up); nothing to switch on before. Set
  through `basics.compat.set_tf32` (torch's fp32_precision switches where they exist).

train.device=auto on a machine with an NVIDIA device node (`NVIDIA_DEVICE_NODES`) whose
torch cannot use CUDA (a CPU-only build, a driver too old) trains on the CPU with one
"lowres: warning:" line saying why, never silently.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch

from lowres.basics.compat import set_tf32
from lowres.config import DataConfig, TrainConfig
from lowres.errors import ConfigError, first_line


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
               precision="fp16", compile=False, channels_last=True, tf32=False,
               precision_why="has no bf16 (sm_80+); fp16 tensor cores need the grad scaler"),
    Generation("Pascal and older", (0, 0), "P100, P40, GTX 10xx",
               precision="fp32", compile=False, channels_last=False, tf32=False,
               precision_why="has no tensor cores; fp16 there is unmeasured (train.precision=fp16 "
                             "to try it)"),
)

BF16_FROM = (8, 0)
TRITON_FROM = (7, 0)  # torch.compile's own gate (Inductor refuses older GPUs)
TRITON_SUPPORTED_FROM = (8, 0)  # what Triton's README supports; sm_7x runs untested upstream
# The device nodes of NVIDIA's driver: one of them means a GPU is there for CUDA to use.
NVIDIA_DEVICE_NODES = ("/dev/nvidia0", "/dev/nvidiactl")


def generation(capability: tuple[int, int]) -> Generation:
    return next(row for row in GENERATIONS if tuple(capability) >= row.capability)


_ARCH = re.compile(r"(sm|compute)_(\d+)(\d)([af]?)")


def kernels_run_on(arch_list, capability: tuple[int, int]) -> bool:
    """Whether a torch built for `arch_list` (torch.cuda.get_arch_list()) has kernels for a GPU
    of `capability`. A binary `sm_XY` runs on major X with minor >= Y; PTX `compute_XY` is
    compiled at load time for any capability >= X.Y; an `a` suffix (sm_90a) means exactly that
    capability. An empty list (torch without CUDA) or one in a format not known here never
    blocks: nothing to go on."""
    cap = tuple(capability)
    known = False
    for arch in arch_list:
        m = _ARCH.fullmatch(arch)
        if not m:
            continue
        known = True
        kind, built, suffix = m[1], (int(m[2]), int(m[3])), m[4]
        if suffix == "a":
            fits = cap == built
        elif kind == "sm":
            fits = cap[0] == built[0] and cap[1] >= built[1]
        else:
            fits = cap >= built
        if fits:
            return True
    return not known


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


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@dataclass
class DevicePolicy:
    device: torch.device  # always with an index on CUDA ("cuda:0", never "cuda")
    amp_dtype: torch.dtype | None  # None = full fp32
    channels_last: bool
    compile: bool
    resident: bool  # the uint8 dataset lives on the device
    augment_masking: str = "subset"  # "subset" (gather, CPU) or "where" (fixed shapes, no syncs)
    compile_augment: bool = False  # the augmentation ops as one compiled graph ("where" only)
    gpu: GpuInfo | None = None  # name, compute capability, memory (CUDA only)
    reasons: tuple[str, ...] = ()  # each GPU choice and why, as `describe_choices` prints them

    @property
    def needs_scaler(self) -> bool:
        return self.amp_dtype is torch.float16

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def describe(self) -> str:
        precision = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}
        where = "in memory" if self.device.type == "cpu" and self.resident else (
            "on device" if self.resident else "gathered on the host per batch")
        gpu = f" ({self.gpu.describe()})" if self.gpu else ""
        return (f"{self.device}{gpu} | {precision[self.amp_dtype]} | "
                f"channels_last={'on' if self.channels_last else 'off'} | "
                f"compile={'on' if self.compile else 'off'} | dataset {where} | "
                f"augment {self.augment_masking}{' compiled' if self.compile_augment else ''}")


    def describe_choices(self) -> str:
        """The policy line, then on a GPU one indented line per choice with its reason."""
        return "\n".join([self.describe(), *(f"  {reason}" for reason in self.reasons)])


def _yes(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value == "yes"


def cuda_device(name: str, local_rank: int | None, world_size: int) -> torch.device:
    """The CUDA device of this process, always with an index: a bare "cuda" would give a
    torch.Generator whose device ("cuda") differs from its tensors' ("cuda:0")."""
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA GPU is available "
                          f"(use train.device=cpu or auto)")
    count = torch.cuda.device_count()
    if world_size > 1:
        if name != "cuda":
            raise ConfigError(f"train.device={name} under torchrun: each process uses the GPU of "
                              f"its LOCAL_RANK; use train.device=cuda (or auto) and choose GPUs "
                              f"with CUDA_VISIBLE_DEVICES")
        index = local_rank or 0
        if index >= count:
            raise ConfigError(f"torchrun started process LOCAL_RANK={index} but this machine has "
                              f"{count} visible GPU(s): use --nproc_per_node {count} or fewer")
        return torch.device("cuda", index)
    index = torch.cuda.current_device() if name == "cuda" else int(name.split(":", 1)[1])
    if index >= count:
        raise ConfigError(f"train.device={name} but this machine has {count} visible GPU(s) "
                          f"(cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def check_kernels(gpu: GpuInfo) -> None:
    """A one-line ConfigError when the installed torch has no kernels for this GPU: what
    would otherwise be "no kernel image is available for execution on the device" at the
    first kernel, as a traceback."""
    archs = torch.cuda.get_arch_list()
    if kernels_run_on(archs, gpu.capability):
        return
    # Kaggle's P100 (sm_60) and its T4 (sm_75): the T4 is the other choice of accelerator there.
    kaggle = ("on Kaggle choose the T4 accelerator (sm_75, which this torch has); "
              if gpu.capability < (7, 0) and kernels_run_on(archs, (7, 5)) else "")
    # PyTorch's wheels: cu126 covers sm_50 to sm_90; the CUDA 12.8+ and 13 ones start at sm_75
    # (Pascal dropped in torch 2.8, Volta in 2.11) and add Blackwell (sm_100, sm_120).
    example = ("e.g. the cu126 wheels: the CUDA 12.8+ and 13 wheels of recent torches start at sm_75"
               if gpu.capability < (7, 5) else "e.g. the cu128 or cu130 wheels")
    raise ConfigError(
        f"the {gpu.name} ({gpu.sm}) has no kernels in the installed torch {torch.__version__} "
        f"(CUDA {torch.version.cuda}, built for {' '.join(archs)}): {kaggle}install a torch build "
        f"whose torch.cuda.get_arch_list() includes {gpu.sm} ({example}), or train on the CPU "
        f"with train.device=cpu")


def _cpu_fallback_warning() -> str | None:
    """Why train.device=auto gets the CPU on a machine with an NVIDIA device node, or None
    where there is no such node (a CPU machine: nothing to say)."""
    node = next((path for path in NVIDIA_DEVICE_NODES if os.path.exists(path)), None)
    if node is None:
        return None
    if torch.version.cuda is None:
        why = "a CPU-only build: torch.version.cuda is None; install a CUDA build of torch"
    elif os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        why = "CUDA_VISIBLE_DEVICES hides every GPU"
    elif getattr(torch._C, "_cuda_getDeviceCount", lambda: 0)() > 0:
        why = "torch.cuda.is_available() is False"  # e.g. PYTORCH_NVML_BASED_CUDA_CHECK
    else:
        # No device for CUDA: starting it cannot succeed, and its error is the reason
        # (no driver, a driver too old for this torch's CUDA).
        try:
            torch.cuda._lazy_init()
            why = "CUDA finds no GPU"
        except Exception as exc:  # noqa: BLE001 (its message is the reason we report)
            why = f"CUDA cannot start: {first_line(exc, 200)}"
    return (f"an NVIDIA GPU is present ({node}) but torch {torch.__version__} cannot use it "
            f"({why}); training on the CPU (set train.device=cpu to say so, or cuda to make "
            f"this an error)")


def resolve(train: TrainConfig, data: DataConfig, dataset_bytes: int = 0,
            local_rank: int | None = None, world_size: int = 1) -> DevicePolicy:
    name = train.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
        warning = _cpu_fallback_warning() if name == "cpu" else None
        if warning:
            print(f"lowres: warning: {warning}", file=sys.stderr)
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        device = cuda_device(name, local_rank, world_size)
    elif name == "cpu":
        device = torch.device("cpu")
    else:
        raise ConfigError(f"train.device={name!r} is not cpu, cuda, cuda:N or auto")
    cuda = device.type == "cuda"
    gpu = gpu_info(device) if cuda else None
    if cuda:
        check_kernels(gpu)
        amp, compile_, channels_last, tf32, reasons = _gpu_choices(train, gpu)
        if train.compile_augment == "yes":
            reasons = (*reasons, _compile_augment_reason(gpu))
    else:
        amp = DTYPES["fp32" if train.precision == "auto" else train.precision]
        if amp is torch.float16:
            raise ConfigError("train.precision=fp16 needs a CUDA GPU (use bf16 or fp32 on the CPU)")
        # channels_last is faster on the CPU too (oneDNN): measured 1.16-1.34x for
        # resnet8/18/50 and cnn_small training steps on 2 x86 cores.
        compile_, channels_last, tf32 = _yes(train.compile, False), _yes(train.channels_last, True), False
        reasons = ()
    if cuda:
        torch.cuda.set_device(device)  # kernels, streams and RNG of this process on its GPU
        torch.backends.cudnn.benchmark = train.cudnn_benchmark
        set_tf32(tf32)
    else:
        # Processes on one machine share its cores (torchrun sets LOCAL_WORLD_SIZE).
        per_process = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        torch.set_num_threads(train.threads or per_process)
    resident_auto = True
    if cuda and dataset_bytes:
        free, _ = torch.cuda.mem_get_info(device)
        resident_auto = dataset_bytes < 0.25 * free
    masking = train.augment_masking
    if masking == "auto":
        # On the CPU gathering the samples that drew an op is cheapest; on an accelerator a
        # data-dependent subset size would make the host wait for the device every op.
        masking = "subset" if device.type == "cpu" else "where"
    if train.compile_augment == "yes" and masking != "where":
        raise ConfigError("train.compile_augment=yes needs the fixed shapes of "
                          "train.augment_masking=where (the default on a GPU)")
    return DevicePolicy(
        device=device,
        amp_dtype=amp,
        channels_last=channels_last,
        compile=compile_,
        resident=_yes(data.resident, resident_auto),
        augment_masking=masking,
        compile_augment=train.compile_augment == "yes",
        gpu=gpu,
        reasons=reasons,
    )


def _gpu_choices(train: TrainConfig, gpu: GpuInfo):
    """(autocast dtype, compile, channels_last, TF32, reasons) for this GPU: the table's row
    for its compute capability (GENERATIONS), unless a key says otherwise."""
    row, cap, who = generation(gpu.capability), gpu.capability, f"the {gpu.short_name} ({gpu.sm})"
    precision = row.precision if train.precision == "auto" else train.precision
    if precision == "bf16" and cap < BF16_FROM:
        raise ConfigError(f"train.precision=bf16 but {who} has no bf16 (it needs sm_80+): use "
                          f"train.precision={row.precision} (or auto)")
    if train.compile == "yes" and cap < TRITON_FROM:
        raise ConfigError(f"train.compile=yes but {who} is too old for Triton, which "
                          f"torch.compile needs (sm_70+): use train.compile=no (or auto)")
    if train.compile != "auto":
        compile_why = f"set by train.compile={train.compile}" + (
            f"; {_unsupported(who)}" if train.compile == "yes" and cap < TRITON_SUPPORTED_FROM else "")
    elif cap < TRITON_FROM:
        compile_why = f"{who} is too old for Triton (torch.compile needs sm_70+)"
    elif not row.compile and cap < TRITON_SUPPORTED_FROM:
        compile_why = (f"Triton officially supports sm_80+ and {who} is unmeasured: eager "
                       f"(train.compile=yes to try it)")
    else:
        compile_why = f"{who} is supported by Triton"
    compile_ = _yes(train.compile, row.compile)
    channels_last = _yes(train.channels_last, row.channels_last)
    label = {"bf16": "bf16 autocast", "fp16": "fp16 autocast + grad scaler", "fp32": "fp32"}[precision]
    why = (f"{who} {row.precision_why}" if train.precision == "auto"
           else f"set by train.precision ({who}; the default here is {row.precision})")
    reasons = (
        f"{label}: {why}",
        f"torch.compile {'on' if compile_ else 'off'}: {compile_why}",
        f"channels_last {'on' if channels_last else 'off'}: "
        + (f"set by train.channels_last={train.channels_last}" if train.channels_last != "auto" else
           f"{'tensor cores read NHWC' if row.channels_last else 'no tensor cores to feed'}"),
        f"TF32 {'on' if row.tf32 else 'off'}: "
        + ("float32 matmuls and convolutions on tensor cores (sm_80+)" if row.tf32
           else "no TF32 before sm_80"),
    )
    return DTYPES[precision], compile_, channels_last, row.tf32, reasons


def _unsupported(who: str) -> str:
    return f"{who} is not officially supported by Triton (sm_80+), which torch lets try from sm_70"


def _compile_augment_reason(gpu: GpuInfo) -> str:
    """train.compile_augment=yes on this GPU: the augmentation graph is Inductor's too, so it
    has the model's gate (a one-line error before sm_70) and its note on sm_7x."""
    who = f"the {gpu.short_name} ({gpu.sm})"
    if gpu.capability < TRITON_FROM:
        raise ConfigError(f"train.compile_augment=yes but {who} is too old for Triton, which "
                          f"torch.compile needs (sm_70+): use train.compile_augment=no")
    note = f"; {_unsupported(who)}" if gpu.capability < TRITON_SUPPORTED_FROM else ""
    return f"compiled augmentation: set by train.compile_augment=yes{note}"


# Host reads of device values that the code means to make. `intended_sync` marks them for
# tests/sync_detector.py (which finds unmarked ones on the CPU) and lifts CUDA's own
# torch.cuda.set_sync_debug_mode inside the block (`make gpu-check` runs with it on).
_state = threading.local()


@contextmanager
def intended_sync(reason: str) -> Iterator[None]:
    """Mark a block whose host reads of device values are deliberate (for SyncDetector and
    for CUDA's own torch.cuda.set_sync_debug_mode, which is lifted inside the block)."""
    stack = getattr(_state, "reasons", None)
    if stack is None:
        stack = _state.reasons = []
    stack.append(reason)
    cuda_mode = torch.cuda.get_sync_debug_mode() if torch.cuda.is_available() else 0
    if cuda_mode:
        torch.cuda.set_sync_debug_mode(0)
    try:
        yield
    finally:
        if cuda_mode:
            torch.cuda.set_sync_debug_mode(cuda_mode)
        stack.pop()


def sync_is_intended() -> bool:
    """Inside an `intended_sync` block (read by the test suite's sync detector)."""
    return bool(getattr(_state, "reasons", None))
