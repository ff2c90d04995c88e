"""Plain config trees <-> typed dataclasses: conversion with type checks, dotted overrides.

Generic over any dataclass schema (the schema itself is in `lowres.config`). Every problem
is a one-line `ConfigError` naming the dotted key.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any, Union

import yaml

from lowres.errors import ConfigError, did_you_mean

def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if _is_dataclass_type(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotated type `tp` and build dataclasses from mappings."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, where)
            except ConfigError as exc:
                errors.append(exc)
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
        if isinstance(value, bool) and where.endswith(("channels_last", "compile", "resident",
                                                              "compile_augment")):
            return "yes" if value else "no"  # YAML turns yes/no into booleans
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{where}': expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def from_dict(cls: type, values: dict, where: str = "") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys name the nearest valid one."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in hints:
            raise ConfigError(f"unknown config key '{path}'{did_you_mean(str(key), names)}")
        kwargs[key] = _convert(value, hints[key], path)
    return cls(**kwargs)


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
        if key in out and isinstance(out[key], dict) and isinstance(value, dict) \
                and key not in ("augment",):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
