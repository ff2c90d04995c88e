"""A sweep's grid: `--grid key=v1,v2` and `--grid-file` values read as YAML, and the
short, file-safe point names built from them (sweep.py runs the points).

    parse_grid(["model.dropout=0.5,0.8"]) -> [("model.dropout", [("0.5", 0.5), ("0.8", 0.8)])]
    parse_grid(["model.dropout=[0.5,0.8]"]) -> the same: one bracketed list is the values

The rule for brackets: the text after '=' is a YAML flow list's items; when it is a single
bracketed list, that list is the values (`k=[0.5,0.8]` as `k=0.5,0.8`). A key whose value is
itself a list (`stages.0.scheduler.milestones`, an augmentation spec) takes a list of lists
(`k=[[10,20],[30]]`), lists side by side (`k=[10,20],[30]`), or a grid file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import yaml

from lowres.errors import ConfigError


def _flow_items(text: str, raw: str, example: str) -> list[tuple[str, Any]]:
    """'0.1,[1,2],"a,b"' read as the YAML flow list [0.1,[1,2],"a,b"]: each item as written
    (YAML's own node marks say where it starts and ends) and as its value."""
    flow = f"[{raw}]"
    try:
        node = yaml.compose(flow, Loader=yaml.SafeLoader)
        values = yaml.safe_load(flow)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or "not valid YAML")
        raise ConfigError(f"grid '{text}': the values are not a YAML list ({problem}; "
                          f"{example})") from None
    items = list(zip(node.value, values))
    if len(items) == 1 and isinstance(items[0][1], list):  # `[a,b]`: the values a and b
        items = list(zip(items[0][0].value, items[0][1]))
    return [(flow[item.start_mark.index:item.end_mark.index], value) for item, value in items]


def _as_written(value: Any) -> str:
    """A value from a grid file as override text that YAML reads back as the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("\n...").strip()


def read_grid_file(path: str | Path) -> dict[str, list[Any]]:
    """A YAML mapping of dotted keys to lists of values: `stages.0.optimizer.lr: [0.1, 0.05]`."""
    try:
        tree = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"grid file {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(tree, dict) or any(not isinstance(v, list) for v in tree.values()):
        raise ConfigError(f"grid file {path}: must map each dotted key to a list of values "
                          "(example: 'stages.0.optimizer.lr: [0.1, 0.05]')")
    return {str(k): v for k, v in tree.items()}


def parse_grid(grid: Sequence[str], grid_file: str | Path | None = None
               ) -> list[tuple[str, list[tuple[str, Any]]]]:
    """['a.b=1,2'] -> [('a.b', [('1', 1), ('2', 2)])]: each value as written and as YAML.

    The text after '=' is read as the items of a YAML flow list, so brackets and quotes are
    YAML's ('0.1,[1,2],"a,b"' is three values); a single bracketed list is the list of values
    ('[0.1,0.2]' is two, '[[1,2],[3]]' two lists). The keys of `grid_file` (read_grid_file)
    follow those of `grid`. Raises ConfigError (one line) for a string that is not
    KEY=V1,V2,..., an empty key, no values, values that are not YAML, a repeated value or a
    key given twice.
    """
    example = "example: --grid stages.0.optimizer.lr=0.1,0.2"
    axes: list[tuple[str, str, list[tuple[str, Any]]]] = []
    for text in grid:
        if "=" not in text:
            raise ConfigError(f"grid '{text}' is not KEY=V1,V2,... ({example})")
        key, raw = text.split("=", 1)
        axes.append((text, key.strip(), _flow_items(text, raw, example)))
    if grid_file is not None:
        axes += [(f"{key}: {values}", key, [(_as_written(v), v) for v in values])
                 for key, values in read_grid_file(grid_file).items()]
    out: list[tuple[str, list[tuple[str, Any]]]] = []
    for text, key, values in axes:
        if not key or any(not p.strip() or p != p.strip() for p in key.split(".")):
            raise ConfigError(f"grid '{text}' has an empty or malformed key ({example})")
        if key in [k for k, _ in out]:
            raise ConfigError(f"grid key '{key}' is given twice: list all its values once "
                              f"({example})")
        if not values:
            raise ConfigError(f"grid '{text}' has no values ({example})")
        raws = [r for r, _ in values]
        dup = next((r for r in raws if raws.count(r) > 1), None)
        if dup is not None:
            raise ConfigError(f"grid '{text}': value '{dup}' is given twice")
        out.append((key, values))
    return out


def _safe(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-")
    text = re.sub(r"-{2,}", "-", text)
    return text or "x"


def name_part(short: str, raw: str) -> str:
    """One key's piece of a point name: its short key and its value as written, file-safe."""
    value = _safe(raw)
    sep = "" if value[0].isdigit() or value[0] == "." else "-"
    return f"{_safe(short)}{sep}{value}"
