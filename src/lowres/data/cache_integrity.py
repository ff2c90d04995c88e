"""The decoded cache is used only when it is provably the file that was written.

A cache file is `<key>.npy` plus `<key>.json`, its record: the array's shape, the file's
size and a CRC-32 of the whole file. Both are written to a temp file with a name of their
own (pid and thread) and renamed, the record last, so
- a process killed while writing leaves a temp file, never a `.npy` that looks whole;
- two runs decoding the same new dataset at once each rename a complete file of the same
  content over the other's: neither can read a mixture;
- a file damaged later (truncated, zero-filled, a bit flipped, a record that belongs to
  another file) fails the size, header or checksum test and is decoded again, with one
  line saying so; it is never silently used.
The CRC reads the whole file once per start (about 1 GB/s), a small price next to
training on wrong pixels.
"""
from __future__ import annotations

import json
import os
import threading
import zlib
from pathlib import Path

import numpy as np

from lowres.basics.disk import remove_quietly

CHUNK = 1 << 22


def file_crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return crc
            crc = zlib.crc32(block, crc)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")


def write(npy: Path, arr: np.ndarray, meta: dict) -> None:
    """Write the array, then its record (with size and CRC); raises OSError (temp files
    removed) when the disk is full or the directory read-only."""
    tmp = _tmp(npy)
    meta_path = npy.with_suffix(".json")
    meta_tmp = _tmp(meta_path)
    try:
        with open(tmp, "wb") as f:
            np.save(f, arr)
            f.flush()
            os.fsync(f.fileno())
        record = dict(meta, bytes=tmp.stat().st_size, crc32=file_crc(tmp),
                      shape=list(arr.shape))
        os.replace(tmp, npy)
        with open(meta_tmp, "w") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(meta_tmp, meta_path)
    except BaseException:
        remove_quietly(tmp)
        remove_quietly(meta_tmp)
        raise


def load(npy: Path, count: int) -> tuple[np.ndarray | None, str | None]:
    """(memory-mapped array, None) when `npy` is whole and holds `count` images; else
    (None, why) when a file exists but may not be used; (None, None) when there is none."""
    if not npy.exists():
        return None, None
    try:
        record = json.loads(npy.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None, "its record (.json) is missing or unreadable"
    try:
        size = npy.stat().st_size
        if record.get("bytes") != size:
            return None, f"it has {size} bytes, its record says {record.get('bytes')}"
        arr = np.load(npy, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        return None, f"its header cannot be read ({type(exc).__name__})"
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[0] != count \
            or list(arr.shape) != record.get("shape"):
        return None, f"it holds {arr.dtype} {list(arr.shape)}, expected {count} uint8 images"
    if file_crc(npy) != record.get("crc32"):
        return None, "its checksum does not match (the file was changed or damaged)"
    return arr, None
