"""A disk that fills up on demand: files opened for writing whose name matches get ENOSPC
partway through their writes (some bytes land first, as on a real full disk)."""
from __future__ import annotations

import builtins
import errno
import io
import os


class _FillingFile:
    def __init__(self, real, budget: int):
        self._real, self._budget = real, budget

    def write(self, data):
        if self._budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if len(data) > self._budget:
            self._real.write(data[: self._budget])
            self._real.flush()
            self._budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget -= len(data)
        return self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()

    def __iter__(self):
        return iter(self._real)


class FullDisk:
    """`FullDisk(monkeypatch, "last.pt", from_nth=2)`: the 2nd and later writes to a file
    whose name contains "last.pt" run out of space after `budget` bytes; `free()` ends it."""

    def __init__(self, monkeypatch, match: str, from_nth: int = 1, budget: int = 100):
        self.match, self.from_nth, self.budget = match, from_nth, budget
        self.opened = 0
        self.full = True
        real_open = builtins.open

        def fake_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            if self.full and any(c in mode for c in "wax") and isinstance(file, (str, os.PathLike)) \
                    and self.match in os.path.basename(os.fspath(file)):
                self.opened += 1
                if self.opened >= self.from_nth:
                    return _FillingFile(f, self.budget)
            return f

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)

    def free(self) -> None:
        self.full = False
