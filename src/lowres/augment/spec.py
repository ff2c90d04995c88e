"""Validation of augmentation specs from the config: each `{op: name, ...}` entry against
its op class's declared `PARAMS` (op classes register themselves in `base.OPS` as they are
defined; the package's __init__ imports the modules that define them)."""
from __future__ import annotations

from typing import Any

from lowres.augment.base import OPS, Op
from lowres.basics.checks import fail
from lowres.errors import ConfigError, did_you_mean

ParsedOp = tuple[type[Op], dict[str, Any]]


def parse_op(spec: Any, key: str, inside_choice: bool = False) -> ParsedOp:
    """Check one op dict; returns its class and the complete, normalised parameters."""
    if not isinstance(spec, dict):
        raise fail(key, f"expected an op, e.g. {{op: hflip, p: 0.5}}, got {spec!r}")
    if "op" not in spec:
        raise fail(f"{key}.op", "missing: every augmentation entry needs an 'op' key "
                   f"(one of {', '.join(sorted(OPS))})")
    name = spec["op"]
    if not isinstance(name, str) or name not in OPS:
        raise fail(f"{key}.op", f"unknown op {name!r}{did_you_mean(str(name), OPS)}")
    cls = OPS[name]
    if inside_choice and cls.mixes:
        raise fail(f"{key}.op", f"'{name}' mixes samples and cannot be inside random_choice")
    params = {}
    for param_name, value in spec.items():
        if param_name == "op":
            continue
        if param_name not in cls.PARAMS:
            raise fail(f"{key}.{param_name}", f"unknown parameter for op '{name}'"
                       f"{did_you_mean(str(param_name), cls.PARAMS)}")
        params[param_name] = cls.PARAMS[param_name].check(f"{key}.{param_name}", value)
    for param_name, declared in cls.PARAMS.items():
        params.setdefault(param_name, declared.default)
    cls.check_combination(key, params)
    return cls, params


def parse_spec(spec: Any, where: str = "augment") -> list[ParsedOp]:
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise ConfigError(f"config key '{where}': expected a list of ops, got {type(spec).__name__}")
    parsed = [parse_op(item, f"{where}.{i}") for i, item in enumerate(spec)]
    first_mix = next((i for i, (cls, _) in enumerate(parsed) if cls.mixes), None)
    if first_mix is not None:
        for i in range(first_mix + 1, len(parsed)):
            cls = parsed[i][0]
            if cls.mixes:
                raise fail(f"{where}.{i}.op", f"only one mix op is allowed (found "
                           f"'{parsed[first_mix][0].name}' at {first_mix}); use 'mixup_cutmix' "
                           "to combine MixUp and CutMix")
            raise fail(f"{where}.{i}.op", f"image op '{cls.name}' comes after mix op "
                       f"'{parsed[first_mix][0].name}' (item {first_mix}); mix ops must be last")
    return parsed


def validate_spec(spec: list[dict], where: str = "augment") -> None:
    """Raise ConfigError (one line, naming the config key) if the spec is not valid."""
    parse_spec(spec, where)
