"""User-facing errors: one line, what is wrong, where, how to fix.

Anything raised as a `LowresError` reaches the user as a single line on stderr with exit
code 2 (see `cli.main`); everything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class LowresError(Exception):
    """Bad input from the user (data, config, arguments). Printed as one line, exit 2."""

    exit_code = 2


class ConfigError(LowresError):
    """A config key, value or type is wrong."""


class DataError(LowresError):
    """The dataset on disk is missing, malformed or inconsistent."""


def first_line(exc: BaseException, limit: int = 160) -> str:
    """'Type: first line of the message' of an exception, for one-line reports."""
    text = str(exc).splitlines()[0][:limit] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def compile_failure(exc: BaseException) -> str:
    """A compile failure in one line, with the compiler's own error: torch wraps it
    (BackendCompilerFailed: "backend='inductor' raised:" and the cause on the next lines;
    `inner_exception`, else `__cause__`), so the wrapper's type and the innermost cause's first
    line, e.g. "BackendCompilerFailed: GPUTooOldForTriton: Found Tesla P100 ..."."""
    inner, seen = exc, {id(exc)}
    while True:
        cause = getattr(inner, "inner_exception", None) or inner.__cause__
        if not isinstance(cause, BaseException) or id(cause) in seen:
            break
        inner = cause
        seen.add(id(cause))
    return first_line(exc) if inner is exc else f"{type(exc).__name__}: {first_line(inner)}"


def nearest(name: str, choices: Iterable[str]) -> str | None:
    """The closest valid spelling of `name` among `choices`, or None if nothing is close."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix, or a list of valid names when nothing is close."""
    choices = sorted(choices)
    best = nearest(name, choices)
    if best is not None:
        return f" (did you mean '{best}'?)"
    return f" (valid: {', '.join(choices)})"
