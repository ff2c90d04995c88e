"""Durations on the command line: '11h30m', '90m', '45s', '1.5h', or plain seconds."""
from __future__ import annotations

import math
import re

from lowres.errors import LowresError

_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(text: str) -> float:
    """Seconds in `text`; a one-line error for anything else."""
    s = text.strip().lower()
    try:
        return float(s)
    except ValueError:
        pass
    parts = _PART.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise LowresError(f"time '{text}' is not a duration (examples: 11h30m, 90m, 45s, 3600)")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(n) * scale[u] for n, u in parts)


def format_duration(seconds: float | None, clock: bool = False) -> str:
    """'1h02m03s', '2m05s', '45s'; with `clock` the aligned '1:02:03' of tables. A missing
    or NaN duration is '-' (a run that has not finished an epoch yet)."""
    if seconds is None or math.isnan(seconds):
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if clock:
        return f"{h}:{m:02d}:{s:02d}"
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
