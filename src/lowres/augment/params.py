"""Declarative parameters of augmentation ops: defaults, type and range checks.

Each op class lists its parameters as `Param`s. A check receives the config key (for the
error message) and the raw value from the config, and returns the normalised value or
raises `ConfigError` with one line that names the key.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable

from lowres.errors import ConfigError

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
    return check


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
    return check


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(key, f"expected true or false, got {value!r}")
    return value


def choice(*options: str) -> Check:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise fail(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value
    return check


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
