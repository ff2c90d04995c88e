"""Progress bars: tqdm on a terminal, silent otherwise (logs and CI stay clean)."""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def interactive() -> bool:
    if os.environ.get("LOWRES_PROGRESS") == "1":
        return True
    if os.environ.get("LOWRES_PROGRESS") == "0":
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
             leave: bool = False) -> Iterable[T]:
    """Wrap `iterable` in a bar when stderr is a terminal; return it as is otherwise."""
    if not interactive():
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)


def bar(total: int, desc: str = "", unit: str = "it", leave: bool = False):
    """A manually updated bar (`update`, `set_postfix_str`, `close`); disabled off a terminal."""
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                disable=not interactive())
