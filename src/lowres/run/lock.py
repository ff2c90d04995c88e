"""One run directory, one writer: `RUN/.lock`.

The training process holds an exclusive `flock` on `RUN/.lock` for as long as it writes the
run, and writes its pid and host into it. The kernel drops the lock when the process ends,
however it ends (SIGKILL and the OOM killer included), so a lock left by a dead process is
never mistaken for a live one, with no pid guessing: the next `lowres train --resume` takes
it over and says so. A second writer while the first lives is refused in one line naming
its pid. (On a file system without flock, such as some network mounts, the pid recorded in
the file decides, on this host.) It lives beside disk.py, not in `train`, because
readers (`lowres runs`, `lowres sweep`) ask it too, and `track` never imports `train`.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from lowres.errors import LowresError

try:
    import fcntl
except ImportError:  # Windows: the pid in the file decides
    fcntl = None

NAME = ".lock"


class RunLocked(LowresError):
    """Another live process trains this run directory."""


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def pid_alive(pid) -> bool:
    """Whether a process with this pid exists on this host (0 and negative pids name process
    groups to os.kill: never a run's writer)."""
    try:
        pid = int(pid)
        if pid <= 0:
            return False
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class RunLock:
    """`RunLock(run_dir).acquire()` or raise RunLocked; `release()` at the end (the process
    ending releases it too). `took_over` holds the holder a stale lock named, if any."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / NAME
        self._fd: int | None = None
        self.took_over: dict | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self._refusal(_read(self.path)) from None
                except OSError:  # flock unsupported here: fall back to the recorded pid
                    self._check_pid(_read(self.path))
            else:
                self._check_pid(_read(self.path))
            old = _read(self.path)
            if old.get("pid") and int(old["pid"]) != os.getpid():
                self.took_over = old  # its process is gone (else the flock would be held)
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _check_pid(self, holder: dict) -> None:
        if holder.get("host") == socket.gethostname() and holder.get("pid") \
                and int(holder["pid"]) != os.getpid() and pid_alive(holder["pid"]):
            raise self._refusal(holder)

    def _refusal(self, holder: dict) -> RunLocked:
        who = f"pid {holder.get('pid', '?')}" + (f" on {holder['host']}" if holder.get("host") else "")
        return RunLocked(f"{self.path.parent} is being trained by another process ({who}): wait "
                         f"for it to finish, or stop it (kill {holder.get('pid', 'PID')}) and "
                         f"resume with `lowres train --resume {self.path.parent}`")

    def release(self) -> None:
        """Clear the record (a reader then sees no holder) and drop the lock."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def note(self) -> str | None:
        """One line when a stale lock was taken over."""
        if not self.took_over:
            return None
        return (f"took over the lock of {self.path.parent} left by pid {self.took_over.get('pid')} "
                f"(that process is no longer running)")


def held_by_other(run_dir: str | Path) -> bool | None:
    """True when a live process holds the run's lock, False when nobody does, None when
    the run has no lock file (runs of older versions) or this cannot be told."""
    path = Path(run_dir) / NAME
    if not path.is_file():
        return None
    if fcntl is None:
        holder = _read(path)
        return bool(holder.get("pid")) and pid_alive(holder["pid"])
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        # A shared lock is granted unless someone holds the exclusive one.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the shared lock we may have taken
    return False
