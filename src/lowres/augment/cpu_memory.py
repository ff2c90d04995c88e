"""Keep freed memory in the process on CPU (glibc malloc tuning), once per process.

A batch op allocates several tensors of a few MB (256 x 3 x 40 x 40 float32 = 4.9 MB).
With glibc's defaults such blocks are either mmapped or, once freed, trimmed back to the
kernel, so the next batch touches fresh pages again: on a virtual machine the page faults
cost more than the arithmetic (measured: stage 1 of the benchmark about 3x faster with the
memory kept). `retain_freed_memory` raises the mmap and trim thresholds so freed blocks are
reused; the process keeps its peak heap (as with jemalloc or tcmalloc, which do the same).

Pipeline.augment calls it on its first CPU batch; set LOWRES_AUGMENT_MALLOC_TUNING=0 to
leave malloc alone. Does nothing where the C library is not glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024

_done: bool | None = None  # None: not tried; True: tuned; False: not possible / switched off


def retain_freed_memory() -> bool:
    """Apply the tuning (idempotent); True when malloc was tuned."""
    global _done
    if _done is None:
        _done = False
        if os.environ.get("LOWRES_AUGMENT_MALLOC_TUNING", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                gnu = bool(libc.gnu_get_libc_version())
                _done = gnu and bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
                    bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            except (OSError, AttributeError):
                _done = False
    return _done


def tuned() -> bool:
    """True once `retain_freed_memory` has tuned malloc in this process."""
    return bool(_done)
