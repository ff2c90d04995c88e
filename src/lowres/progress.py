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
    return _tqdm()(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                   disable=not interactive())
