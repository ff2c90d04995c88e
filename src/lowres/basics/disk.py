"""Writes that a full disk (or a kill) cannot turn into damaged files.

Three shapes of write cover every file a run keeps:
- replace: write a temp file beside the target, fsync, rename over it (checkpoints,
  status.json, the cache): the old file is whole until the rename, the new one after;
- append: add a line at the end (metrics.csv, events.jsonl): on a failed write the file is
  cut back to its old size, so no half line is left for the next append to merge with;
- and both repair what a kill left: a temp file is removed, a last line without its newline
  is ended before the next one is appended.

A full disk (ENOSPC, or EDQUOT for a quota) while writing becomes `DiskFullError`, one line
naming the file and what to do (free space, then resume), instead of a traceback.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from lowres.errors import LowresError

FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(LowresError):
    """No space left while writing a file; the previous version of the file is intact."""


def is_disk_full(exc: BaseException | None) -> bool:
    """Also when the ENOSPC is the cause or context of another error (torch.save's writer
    raises its own RuntimeError while unwinding from the failed write)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in FULL:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def disk_full(path: str | Path, then: str = "") -> DiskFullError:
    return DiskFullError(f"disk full while writing {path}: the previous file is intact; free "
                         f"space on that disk{', then ' + then if then else ''}")


def remove_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_dir(directory: str | Path) -> None:
    """Make a rename in `directory` survive a power cut (not only a process kill)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported here (e.g. some network file systems): best effort
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_text(path: str | Path, text: str, fsync: bool = False, then: str = "") -> None:
    """Append `text` (whole lines) to `path`. A kill before this call may have left a last
    line without its newline: it is ended first, so the new line stays a line of its own.
    A failed write cuts the file back to where it was: a full disk leaves no half line."""
    path = Path(path)
    with open(path, "ab") as f:
        size = f.tell()
        if size and _last_byte(path, size) != b"\n":
            text = "\n" + text
        try:
            f.write(text.encode())
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        except OSError as exc:
            try:
                f.truncate(size)  # shrinking needs no space
            except OSError:
                pass
            if is_disk_full(exc):
                raise disk_full(path, then) from None
            raise


def _last_byte(path: Path, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1)


def replace_text(path: str | Path, text: str, then: str = "") -> None:
    """Write `text` to a temp file beside `path`, fsync, rename over `path`: a reader (or a
    resume after a kill) sees the old file or the new one, never a part of either."""
    replace_bytes(path, text.encode(), then)


def replace_bytes(path: str | Path, data: bytes, then: str = "") -> None:
    """`replace_text` for bytes (a PNG, for instance)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        remove_quietly(tmp)
        if is_disk_full(exc):
            raise disk_full(path, then) from None
        raise
