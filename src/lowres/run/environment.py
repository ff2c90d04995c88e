"""What a run ran on, for its env.json: versions, machine, device and git commit.

Facts about the process and machine, not about training: a run directory keeps them so that
a result can be traced to the software and hardware that produced it.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def lowres_version() -> str:
    """The installed distribution's version (pyproject.toml is its one source); a checkout
    run from its source folder without installing (`PYTHONPATH=src`, as `make gpu-check`
    runs on a bare GPU machine) says so instead."""
    import importlib.metadata  # here, not at import: it is slow to load

    try:
        return importlib.metadata.version("lowres")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: run from a source checkout)"


def environment(device: str) -> dict[str, Any]:
    """Versions of Python and the libraries, the machine, `device` (and its GPU, CUDA and
    cuDNN versions and the archs torch was built for on CUDA), the command line and the git
    commit of the code."""
    import numpy
    import torch
    import torchvision

    env = {
        "lowres": lowres_version(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "command": " ".join(sys.argv),
        "git_commit": _git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        env["gpu"] = props.name
        env["gpu_capability"] = f"sm_{props.major}{props.minor}"
        env["gpu_memory_gib"] = round(props.total_memory / (1 << 30), 1)
        env["cuda_arch_list"] = torch.cuda.get_arch_list()  # the GPUs this torch has kernels for
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
