"""Progress bars: tqdm on a terminal, a notebook widget in Jupyter, silent otherwise (logs
and CI stay clean)."""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (its stderr is no terminal, but it shows widgets);
    False in a terminal IPython."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    # Jupyter and Kaggle run ZMQInteractiveShell; Colab a subclass of it; both are kernels.
    return ip is not None and (type(ip).__name__ == "ZMQInteractiveShell"
                               or "IPKernelApp" in getattr(ip, "config", {}))


def interactive() -> bool:
    if os.environ.get("LOWRES_PROGRESS") == "1":
        return True
    if os.environ.get("LOWRES_PROGRESS") == "0":
        return False
    return sys.stderr.isatty() or in_notebook()


def _tqdm():
    # tqdm.auto draws a widget in Jupyter (when ipywidgets is installed) and falls back on
    # text elsewhere; terminal control codes would print as garbage in a notebook cell.
    if in_notebook():
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = False) -> Iterable[T]:
    """Wrap `iterable` in a bar when someone watches; return it as is otherwise."""
    if not interactive():
        return iterable
    return _tqdm()(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


def bar(total: int, desc: str = "", unit: str = "it", leave: bool = False):
    """A manually updated bar (`update`, `set_postfix_str`, `close`); disabled when unwatched."""
    if _relay is not None:
        return RelayedBar(*_relay, total=total, desc=desc, unit=unit, leave=leave)
    return _tqdm()(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                   disable=not interactive())


# --------------------------------------------------------------------------- relay
# Under `--devices N` (lowres/train/launch.py) rank 0 runs in a child process whose own stdout is
# not the caller's notebook cell: its text and bar updates go through a queue instead, and
# the launcher draws them where the caller watches.
_relay = None


def relay_to(queue, watched: bool) -> None:
    """From now on `bar()` sends to `queue` (`watched`: whether the caller shows bars)."""
    global _relay
    _relay = (queue, watched)


class QueueWriter:
    """A text stream whose writes go to a queue as (kind, text) messages."""

    def __init__(self, queue, kind: str) -> None:
        self.queue, self.kind = queue, kind

    def write(self, text: str) -> int:
        if text:
            self.queue.put((self.kind, text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class RelayedBar:
    """The part of a tqdm bar the trainer uses, sent to the launcher as messages."""

    _count = 0

    def __init__(self, queue, watched: bool, **kwargs) -> None:
        RelayedBar._count += 1
        self.key, self.queue, self.disable = RelayedBar._count, queue, not watched
        if watched:
            self.queue.put(("bar", self.key, "new", kwargs))

    def _send(self, method: str, payload=None) -> None:
        if not self.disable:
            self.queue.put(("bar", self.key, method, payload))

    def update(self, n: int = 1) -> None:
        self._send("update", n)

    def set_postfix_str(self, text: str) -> None:
        self._send("postfix", text)

    def close(self) -> None:
        self._send("close")
