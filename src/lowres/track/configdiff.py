"""What differs between run configs: dotted keys, their values, and groups of seeds.

Configs are compared as flat {dotted key: value} maps (`stages.0.optimizer.lr`), so a key
missing from one config is a difference like any other value.
"""
from __future__ import annotations

from typing import Any, Sequence

from lowres.config.tree import yaml_text

MISSING = "(absent)"


def flatten_config(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'stages': [{'optimizer': {'lr': 0.1}}]} -> {'stages.0.optimizer.lr': 0.1}.

    Mappings and lists are walked (list items by index); an empty mapping or list is a leaf.
    """
    if isinstance(tree, (dict, list)) and tree:
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        out: dict[str, Any] = {}
        for key, value in items:
            out.update(flatten_config(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def differing_keys(configs: Sequence[dict], ignore: Sequence[str] = ("name",)) -> list[str]:
    """Dotted keys whose value is not the same in every config (absent counts as a value).

    Keys are in order of first appearance; keys in `ignore` (exact dotted keys) are skipped.
    """
    flats = [flatten_config(c) for c in configs]
    order = dict.fromkeys(key for flat in flats for key in flat)
    return [key for key in order if key not in ignore
            and any(not _same(flat.get(key, MISSING), flats[0].get(key, MISSING))
                    for flat in flats[1:])]


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 == True in Python; a config that changed a type did change.
    return type(a) is type(b) and a == b


def value_text(flat: dict[str, Any], key: str) -> str:
    """The value of a dotted key of a flattened config as YAML writes it; MISSING when the
    config lacks it."""
    return yaml_text(flat.get(key, MISSING))


def seed_groups(configs: Sequence[dict], ignore: Sequence[str] = ("seed", "name")) -> list[list[int]]:
    """Indices of configs grouped by equality once the `ignore` keys are left out.

    Groups are in order of their first run; runs keep their order inside a group.
    """
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = tuple(sorted((k, type(v).__name__, repr(v)) for k, v in flatten_config(cfg).items()
                           if k not in ignore))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def group_names(configs: Sequence[dict], groups: list[list[int]]) -> list[str]:
    """A group is named by its values of the keys that differ between groups."""
    reps = [configs[g[0]] for g in groups]
    keys = differing_keys(reps, ignore=("seed", "name")) if len(groups) > 1 else []
    return [", ".join(f"{k}={value_text(flat, k)}" for k in keys) or "all runs"
            for flat in map(flatten_config, reps)]
