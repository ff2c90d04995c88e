"""Plain config trees <-> typed dataclasses: conversion with type checks, dotted overrides.

Generic over any dataclass schema; it knows no key by name. A field's annotation says all
there is to know about it (the schema itself is in `lowres.config`):
* a type (bool, int, float, str, list[...], X | None, a nested dataclass);
* `Literal[...]` for a fixed set of strings: a value outside it is refused with the nearest
  name, and YAML's yes/no booleans become "yes"/"no" where the set offers them;
* `Annotated[T, check, ..., "description"]`: each check (`lowres.basics.checks`) runs on the
  converted value (not on null), and the string is the key's one-line description.
Every problem is a one-line `ConfigError` naming the dotted key.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Annotated, Any, Iterator, Literal, Sequence, Union

import yaml

from lowres.basics.checks import OneOf, shows
from lowres.errors import ConfigError, did_you_mean


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _type_name(typing.get_args(tp)[0])
    if origin is Literal:
        return "str"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict or tp is dict or _is_dataclass_type(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotated type `tp` and build dataclasses from mappings."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *extras = typing.get_args(tp)
        value = _convert(value, base, where)
        for check in extras:
            if callable(check) and value is not None:
                value = check(where, value)
        return value
    if origin is Literal:
        names = typing.get_args(tp)
        if isinstance(value, bool) and {"yes", "no"} <= set(names):
            return "yes" if value else "no"  # YAML 1.1 reads yes/no as booleans
        return OneOf(names)(where, value)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, where)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{where}': expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"config key '{where}': expected null, got {value!r}")
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{where}': expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{where}': expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_convert(v, item_tp, f"{where}.{i}") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{where}': expected a mapping, got {value!r}")
        return copy.deepcopy(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{where}': expected true or false, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{where}': expected a number, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{where}': expected an integer, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{where}': expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def from_dict(cls: type, values: dict, where: str = "") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys name the nearest valid one."""
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in hints:
            raise ConfigError(f"unknown config key '{path}'{did_you_mean(str(key), names)}")
        kwargs[key] = _convert(value, hints[key], path)
    return cls(**kwargs)


def checked(cfg: Any, where: str = "") -> Any:
    """`cfg` (a dataclass built in code, not from a file) put through the schema's checks:
    a copy, or the one-line error naming the key."""
    return from_dict(type(cfg), to_dict(cfg), where)


@dataclasses.dataclass(frozen=True)
class Key:
    """One schema key, as `lowres options` lists it."""
    path: str  # dotted; list items as N (stages.N.epochs)
    type: str
    default: Any
    allowed: str  # choices or range, '' when the type says it all
    doc: str


def keys(cls: type, prefix: str = "") -> Iterator[Key]:
    """Every leaf key of schema `cls`, depth first, in field order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        tp, path = hints[f.name], prefix + f.name
        extras: tuple = ()
        if typing.get_origin(tp) is Annotated:
            tp, *extras = typing.get_args(tp)
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        if _is_dataclass_type(tp):
            yield from keys(tp, path + ".")
        elif _is_dataclass_type(item):  # a list of sections: each item fills its own defaults
            yield from keys(item, path + ".N.")
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
                else f.default
            allowed = [shows(c) for c in extras if callable(c)]
            if typing.get_origin(tp) is Literal:
                allowed.insert(0, "one of " + ", ".join(typing.get_args(tp)))
            yield Key(path, _type_name(tp), to_dict(default), "; ".join(a for a in allowed if a),
                      " ".join(e for e in extras if isinstance(e, str)))


def to_dict(cfg: Any) -> Any:
    """A plain, YAML-ready copy of a config tree."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


# --------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """'stages.0.epochs=3' -> (['stages', '0', 'epochs'], 3). Values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not key=value (example: stages.0.epochs=3)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key (example: train.batch_size=128)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_override(tree: dict, parts: list[str], value: Any) -> None:
    """Set `value` at dotted path `parts` of a plain config tree, list items by index."""
    node: Any = tree
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"config key '{where}': no item {part} (the list has "
                                  f"{len(node)} items, indices 0..{len(node) - 1})")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                # Keys unknown to a fixed schema are reported by from_dict with a suggestion;
                # here we only create them so that error names the full key.
                if last:
                    node[part] = value
                    return
                node[part] = {}
            if last:
                node[part] = value
            else:
                node = node[part]
        else:
            raise ConfigError(f"config key '{where}': '{'.'.join(parts[:depth])}' is a value, "
                              f"not a mapping or list")


def unshare(value: Any) -> Any:
    """A copy in which no two places share an object. YAML anchors (&a / *a) make aliases,
    and an override of one place must not change the others."""
    if isinstance(value, dict):
        return {k: unshare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unshare(v) for v in value]
    return value


def merge(defaults: dict, values: dict) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def yaml_text(value: Any) -> str:
    """A config value as YAML writes it, on one line: `lowres options`' defaults and the
    differing values of a comparison. A long list, or one of sections, is counted instead."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or '""'
    if isinstance(value, dict):
        return f"{{{len(value)} keys}}" if value else "{}"
    if isinstance(value, list):
        text = "[" + ", ".join(yaml_text(v) for v in value) + "]"
        return text if len(text) <= 40 and not any(isinstance(v, dict) for v in value) \
            else f"[{len(value)} items]"
    return str(value)


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key shares, '.' -> '-'.

    ['model.dropout', 'stages.0.optimizer.lr'] -> {..: 'dropout', ..: 'lr'};
    ['stages.0.optimizer.lr', 'stages.1.optimizer.lr'] -> '0-optimizer-lr', '1-optimizer-lr'.
    """
    parts = {k: k.split(".") for k in keys}
    out = {}
    for k in keys:
        for n in range(1, len(parts[k]) + 1):
            suffix = parts[k][-n:]
            if not any(o != k and parts[o][-n:] == suffix for o in keys):
                break
        out[k] = "-".join(suffix)
    return out
