"""A test tool: finding host-device synchronisations without a GPU.

On an accelerator the host queues work and runs ahead; anything that reads a device value
on the host (`.item()`, `bool(t)`, `.tolist()`, a data-dependent shape such as `nonzero`
or boolean indexing) or builds a tensor from host data in the middle of a step
(`torch.tensor([...], device=...)`) makes it wait, and a training step full of such waits
leaves the GPU idle. These are properties of the code, not of the device, so they can be
caught on the CPU: `SyncDetector` watches every tensor operation of a block (through
PyTorch's dispatch and function modes) and raises `SyncError` at the first one that would
synchronise on CUDA, unless the code marked it as intended with `intended_sync(reason)`
(an epoch end, a progress refresh, a mid-epoch checkpoint; lowres.train.device).

`torch.cuda.set_sync_debug_mode("error")` is the same check on a real GPU (`make gpu-check`).
"""
from __future__ import annotations

import traceback

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from lowres.train.device import intended_sync, sync_is_intended  # noqa: F401 (re-exported for tests)

class SyncError(AssertionError):
    """An operation that would make the host wait for the device."""


aten = torch.ops.aten
# Operations whose result (a value or a shape) the host must read from the device.
_READS_DEVICE = {
    aten._local_scalar_dense,  # .item(), bool(t), int(t), float(t), `if t:`
    aten.nonzero, aten.masked_select, aten.unique_dim, aten._unique2, aten.unique_consecutive,
    aten.is_nonzero, aten.equal, aten.allclose,
    aten.repeat_interleave,  # without output_size: the total is read on the host
    aten.bincount,  # CUDA reads the largest value to size the output
}
# Tensor methods and functions that move device data to the host or host data in.
_HOST_TRANSFERS = {
    torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.item, torch.Tensor.cpu,
    torch.tensor, torch.as_tensor, torch.from_numpy,
}


def _where() -> str:
    """The innermost frame of lowres code that asked for the operation."""
    for frame in reversed(traceback.extract_stack()[:-3]):
        if "/lowres/" in frame.filename.replace("\\", "/") and "sync_detector" not in frame.filename:
            return f"{frame.filename.rsplit('/lowres/', 1)[-1]}:{frame.lineno} ({frame.line})"
    return "outside lowres"


class _DispatchWatch(TorchDispatchMode):
    def __init__(self, detector: "SyncDetector"):
        super().__init__()
        self.detector = detector

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        if not sync_is_intended():
            if packet in _READS_DEVICE and not (packet is aten.repeat_interleave
                                                and kwargs.get("output_size") is not None):
                self.detector.found(f"{packet.__name__}")
            elif packet in (aten.index, aten.index_put, aten.index_put_) and any(
                    isinstance(i, torch.Tensor) and i.dtype == torch.bool
                    for i in (args[1] if len(args) > 1 else ()) if i is not None):
                self.detector.found(f"boolean-mask {packet.__name__} (a data-dependent shape)")
        return func(*args, **kwargs)


class _FunctionWatch(TorchFunctionMode):
    def __init__(self, detector: "SyncDetector"):
        super().__init__()
        self.detector = detector

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _HOST_TRANSFERS and not sync_is_intended():
            if func in (torch.tensor, torch.as_tensor) and args and isinstance(args[0], torch.Tensor):
                pass  # a tensor in, a tensor out: no host data involved
            else:
                self.detector.found(f"{getattr(func, '__qualname__', func)}")
        return func(*args, **kwargs)


class SyncDetector:
    """`with SyncDetector():` raises SyncError at the first unintended synchronisation."""

    def __init__(self) -> None:
        self._modes = (_FunctionWatch(self), _DispatchWatch(self))

    def found(self, what: str) -> None:
        raise SyncError(f"host-device synchronisation: {what} at {_where()}; on a GPU this "
                        f"stalls every step (mark deliberate reads with intended_sync)")

    def __enter__(self) -> "SyncDetector":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
