"""`lowres options [SECTION]`: every config key with its default, choices or range and
description, generated from the schema in config.py, so the listing, the validation and
the error messages all read the same annotations and tables."""
from __future__ import annotations

import re

from lowres.config import Config
from lowres.config.tree import Key, keys, yaml_text
from lowres.errors import ConfigError, did_you_mean

_LIST_NOTE = ("stages: a list of stages (default: the seed's 3-stage plan); stages.N.* are each "
              "stage's keys, and a stage given in a file fills the rest from these defaults")


def _sections(rows: list[Key]) -> set[str]:
    """Every dotted prefix of a key (model, stages.N.scheduler, ...): what SECTION may be."""
    out = set()
    for row in rows:
        parts = row.path.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def option_rows(section: str | None = None) -> list[Key]:
    rows = list(keys(Config))
    if not section:
        return rows
    wanted = re.sub(r"\.\d+(?=\.|$)", ".N", section)  # stages.0.scheduler -> stages.N.scheduler
    if wanted not in _sections(rows):
        raise ConfigError(f"no config section or key '{section}'{did_you_mean(wanted, _sections(rows))}")
    return [r for r in rows if r.path == wanted or r.path.startswith(wanted + ".")]


def option_lines(section: str | None = None) -> list[str]:
    rows = option_rows(section)
    lines = [_LIST_NOTE, ""] if any(r.path.startswith("stages.N.") for r in rows) else []
    for row in rows:
        kind = f"{row.type}; {row.allowed}" if row.allowed else row.type
        lines.append(f"{row.path} = {yaml_text(row.default)}  ({kind})")
        if row.doc:
            lines.append(f"    {row.doc}")
    return lines
