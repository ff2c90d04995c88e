"""Decode images once into a uint8 array [N, C, H, W], kept as a memory-mappable .npy.

The cache key hashes the file list (path, size, modification time), so adding, removing or
changing a file makes a new cache; an unchanged dataset is never decoded twice, across runs.
Problems inside image files (unreadable, truncated, mixed sizes) are reported here, one
line naming the file, before anything is written. Images stored in a table (Hugging Face
datasets, parquet; see `tables.py`) are keyed by their table files and decoded the same
way. `data.size=N` resizes (shorter side to N, centre crop) while decoding; off by default.
"""
from __future__ import annotations

import hashlib
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lowres.data import cache_integrity
from lowres.errors import DataError
from lowres.basics.progress import progress

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("LOWRES_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lowres"


def file_list_key(paths: list[Path], size: int | None = None) -> str:
    digest = hashlib.sha256(f"lowres-cache-v{CACHE_VERSION}\n".encode())
    if size is not None:  # resized arrays are other arrays (unresized keys stay as they were)
        digest.update(f"size={size}\n".encode())
    for path in paths:
        st = path.stat()
        digest.update(f"{path.resolve()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _fit(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to `size` and crop the centre square (data.size)."""
    if img.size == (size, size):
        return img
    return ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


def _decode_one(source: Path | bytes, name: Path, size: int | None = None) -> np.ndarray:
    """HWC uint8 (C = 1 or 3) of a file or of encoded bytes; raises DataError naming it."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.load()
            mode = "L" if img.mode in GRAY_MODES else "RGB"
            converted = img.convert(mode)
            arr = np.asarray(_fit(converted, size) if size else converted, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: cannot decode image ({exc}); replace or remove the file") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode_images(paths: list[Path], desc: str = "decoding", size: int | None = None,
                  sources: list[bytes] | None = None) -> np.ndarray:
    """Decode every file (or every encoded image of `sources`, named by `paths`) into one
    uint8 array [N, C, H, W]; one size for all, or each resized to size x size."""
    if not paths:
        raise DataError("no images to decode (the image list is empty)")
    sources = sources if sources is not None else paths
    first = _decode_one(sources[0], paths[0], size)
    height, width = first.shape[:2]
    channels = first.shape[2]
    images: list[np.ndarray] = [first]
    # PIL releases the GIL while decoding, so threads use every core without pickling.
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        decoded = progress(pool.map(_decode_one, sources[1:], paths[1:], [size] * (len(paths) - 1)),
                           total=len(paths) - 1, desc=desc, unit="img")
        for path, arr in zip(paths[1:], decoded):
            if arr.shape[:2] != (height, width):
                raise DataError(f"{path} is {arr.shape[1]}x{arr.shape[0]} but {paths[0].name} is "
                                f"{width}x{height}: all images must have one size; set "
                                f"data.size=N to resize and centre-crop every image to NxN")
            channels = max(channels, arr.shape[2])
            images.append(arr)
    out = np.empty((len(images), channels, height, width), dtype=np.uint8)
    for i, arr in enumerate(images):
        out[i] = arr.transpose(2, 0, 1)  # a 1-channel image broadcasts into RGB when mixed
    return out


def cached_images(items, cache_dir: str | Path | None = None, desc: str = "decoding",
                  size: int | None = None) -> np.ndarray:
    """The decoded array of `items` (a list of image files, or a `read.Split`, whose images
    may live in a table), from the cache when present (memory-mapped). `size`: resize and
    centre-crop to size x size (data.size); None keeps the images as they are."""
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    table = getattr(items, "table", None)
    paths = list(getattr(items, "paths", items))
    key = table.cache_key(size) if table is not None else file_list_key(paths, size)
    npy = cache_dir / f"{key}.npy"
    arr, damaged = cache_integrity.load(npy, len(paths))  # size, header and checksum
    if arr is not None:
        return arr
    if damaged:
        print(f"lowres: the image cache {npy} is not usable ({damaged}): decoding again",
              file=sys.stderr)
    sources = table.encoded_images() if table is not None else None
    arr = decode_images(paths, desc=desc, size=size, sources=sources)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_integrity.write(npy, arr, {"files": len(paths), "first": str(paths[0]),
                                         "version": CACHE_VERSION, "size": size})
    except OSError as exc:  # a read-only or full cache dir costs speed, not correctness
        print(f"lowres: could not write the image cache in {cache_dir} ({exc}); "
              f"set LOWRES_CACHE_DIR or data.cache_dir to a writable directory", file=sys.stderr)
    return arr


def channel_stats(images: np.ndarray, indices: np.ndarray | None = None,
                  chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and std (population) over all pixels, in 0..1 units.

    Sums of uint8 values and their squares are exact in int64, so the result does not
    depend on batching (the seed averaged per-batch stds, which is not the dataset std).
    """
    n = images.shape[0] if indices is None else len(indices)
    channels = images.shape[1]
    total = np.zeros(channels, dtype=np.int64)
    total_sq = np.zeros(channels, dtype=np.int64)
    for start in range(0, n, chunk):
        sel = slice(start, start + chunk) if indices is None else indices[start:start + chunk]
        block = np.asarray(images[sel], dtype=np.int64)
        total += block.sum(axis=(0, 2, 3))
        total_sq += (block * block).sum(axis=(0, 2, 3))
    count = n * images.shape[2] * images.shape[3]
    mean = total / count
    var = np.maximum(total_sq / count - mean * mean, 0.0)
    return [float(m / 255.0) for m in mean], [float(np.sqrt(v) / 255.0) for v in var]
