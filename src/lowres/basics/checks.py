"""The one vocabulary of value checks: numbers, ranges, choices, pairs, ...

Used by the config schema (`Annotated[float, number(0, 0.9)]` in config.py) and by the
augmentation ops' `Param`s. A check receives the config key (for the error message) and
the value, and returns the normalised value or raises `ConfigError` with one line that
names the key. A check's `shows` text (a range, the choices) is what `lowres options`
prints, so the listing and the validation cannot disagree.
"""
from __future__ import annotations

import importlib
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from lowres.errors import ConfigError, did_you_mean

Check = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Param:
    default: Any
    check: Check
    doc: str = ""


def fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"config key '{key}': {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def shows(check: Any) -> str:
    """What a check allows, in words, for listings ('' when it says nothing more than the type)."""
    text = getattr(check, "shows", "")
    return text() if callable(text) else text


def _shown(check: Check, text: str) -> Check:
    check.shows = text  # read by shows()
    return check


def _bounds(low: float | None, high: float | None, low_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"{'(' if low_open else '['}{low}, {high}]"
    if low is not None:
        return f"> {low}" if low_open else f">= {low}"
    return f"<= {high}" if high is not None else ""


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False) -> Check:
    """A real number in [low, high] (or (low, high] with low_open)."""
    def check(key: str, value: Any) -> float:
        if not _is_number(value):
            raise fail(key, f"expected a number, got {value!r}")
        value = float(value)
        if low is not None and (value < low or (low_open and value == low)):
            bound = f"greater than {low}" if low_open else f"at least {low}"
            raise fail(key, f"must be {bound}, got {value}")
        if high is not None and value > high:
            raise fail(key, f"must be at most {high}, got {value}")
        return value
    return _shown(check, _bounds(low, high, low_open))


probability = number(0.0, 1.0)


def integer(low: int | None = None, high: int | None = None) -> Check:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise fail(key, f"expected an integer, got {value!r}")
        value = int(value)
        if low is not None and value < low:
            raise fail(key, f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise fail(key, f"must be at most {high}, got {value}")
        return value
    return _shown(check, _bounds(low, high))


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(key, f"expected true or false, got {value!r}")
    return value


class OneOf:
    """A name from a table: a tuple, or `"module:ATTRIBUTE"` for a table owned by a module
    the config must not import at start-up (the optimizers and models need torch). The
    table is read at check time, so a name registered in it counts at once."""

    def __init__(self, source: Iterable[str] | str):
        self.source = source if isinstance(source, str) else tuple(source)

    def names(self) -> tuple[str, ...]:
        if isinstance(self.source, tuple):
            return self.source
        module, attribute = self.source.split(":")
        return tuple(getattr(importlib.import_module(module), attribute))

    def shows(self) -> str:
        return "one of " + ", ".join(self.names())

    def __call__(self, key: str, value: Any) -> str:
        names = self.names()
        if not isinstance(value, str) or value not in names:
            hint = did_you_mean(str(value), names) if len(names) > 1 else ""
            raise fail(key, f"{value!r} is not one of {', '.join(names)}{hint}")
        return value


def one_of(source: Iterable[str] | str) -> OneOf:
    return OneOf(source)


def choice(*options: str) -> Check:
    return OneOf(options)


def interval(low: float | None = None, high: float | None = None, *,
             from_number: Callable[[float], tuple[float, float]] | None = None) -> Check:
    """A pair [a, b] with low <= a <= b <= high. A single number x is accepted when
    `from_number` says how to widen it (e.g. x -> [1 - x, 1 + x] for brightness)."""
    def check(key: str, value: Any) -> tuple[float, float]:
        if _is_number(value) and from_number is not None:
            pair = from_number(float(value))
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value)):
            pair = (float(value[0]), float(value[1]))
        else:
            what = "a number or a pair [min, max]" if from_number else "a pair [min, max]"
            raise fail(key, f"expected {what}, got {value!r}")
        a, b = pair
        if a > b:
            raise fail(key, f"min must not exceed max, got {list(pair)}")
        if (low is not None and a < low) or (high is not None and b > high):
            raise fail(key, f"values must lie in [{low}, {high}], got {list(pair)}")
        return pair
    return check


def optional(inner: Check) -> Check:
    def check(key: str, value: Any) -> Any:
        return None if value is None else inner(key, value)
    return check


def duration(key: str, value: Any) -> str:
    """A positive duration as written ('5m', '1h30m', '90s', or seconds): kept as given
    (configs stay readable), parsed where it is used (basics.durations)."""
    from lowres.basics.durations import parse_duration
    from lowres.errors import LowresError

    text = str(value).strip() if not isinstance(value, bool) else ""
    try:
        seconds = parse_duration(text)
    except LowresError:
        seconds = -1.0
    if not seconds > 0:
        raise fail(key, f"expected a duration such as 5m, 1h30m or 300 (seconds), got {value!r}")
    return text


duration.shows = "a duration: 5m, 1h30m, 300"


def colour(key: str, value: Any) -> tuple[float, ...]:
    """A fill colour in 0..1 units: one number for every channel, or one per channel."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or len(values) not in (1, 3) or not all(map(_is_number, values)):
        raise fail(key, f"expected a number or a list of 1 or 3 numbers (0..1), got {value!r}")
    return tuple(float(v) for v in values)


def odd_size(key: str, value: Any) -> tuple[int, int]:
    """Kernel size: an odd positive integer or a pair [kx, ky] of them."""
    pair = value if isinstance(value, (list, tuple)) else [value, value]
    ok = len(pair) == 2 and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                and v > 0 and v % 2 == 1 for v in pair)
    if not ok:
        raise fail(key, f"expected an odd positive integer or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def size_pair(key: str, value: Any) -> tuple[int, int] | None:
    """An output size: null (keep the input size), an integer, or [height, width]."""
    if value is None:
        return None
    pair = value if isinstance(value, (list, tuple)) else [value, value]
    ok = len(pair) == 2 and all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                and v > 0 for v in pair)
    if not ok:
        raise fail(key, f"expected a positive integer or [height, width], got {value!r}")
    return int(pair[0]), int(pair[1])


def padding4(key: str, value: Any) -> tuple[int, int, int, int]:
    """Padding as torchvision takes it: k, [left/right, top/bottom] or [left, top, right, bottom]."""
    values = value if isinstance(value, (list, tuple)) else [value]
    ok = len(values) in (1, 2, 4) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in values)
    if not ok:
        raise fail(key, f"expected a non-negative integer or a list of 2 or 4 of them, got {value!r}")
    v = [int(x) for x in values]
    if len(v) == 1:
        return v[0], v[0], v[0], v[0]
    if len(v) == 2:
        return v[0], v[1], v[0], v[1]
    return v[0], v[1], v[2], v[3]
