"""A search space: dotted config keys and what each may take, read from a small YAML file.

    stages.0.optimizer.lr: {low: 0.01, high: 0.5, log: true}   # a log-uniform float
    model.dropout: {low: 0.0, high: 0.5}                        # a uniform float
    stages.0.epochs: {low: 2, high: 8, int: true}               # an integer (step 1)
    train.label_smoothing: {low: 0.0, high: 0.2, step: 0.05}    # a float on a grid
    model.name: [resnet8, cnn_small]                            # a choice

A range whose `low` and `high` are both integers is an integer range unless `int: false`.
Every key is checked against the base config before a study starts: the config is loaded
with each key set to its bounds (or each choice), so an unknown key or a value the config
refuses is one ConfigError line naming the key (`check_against_config`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from lowres.errors import ConfigError

RANGE_KEYS = {"low", "high", "log", "int", "step"}


@dataclass(frozen=True)
class Param:
    """One dimension: a float/int range (`low`, `high`, `log`, `step`) or a list of choices."""

    key: str
    kind: str  # "float" | "int" | "choice"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    def spec(self) -> dict[str, Any]:
        """The canonical form (what a study remembers to recognise its space)."""
        if self.kind == "choice":
            return {"choices": list(self.choices)}
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log,
                "step": self.step}

    def bounds(self) -> list[Any]:
        """Values that stand for the whole dimension when checking it against a config."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _param(key: str, raw: Any, where: str) -> Param:
    if not isinstance(key, str) or not key or " " in key:
        raise ConfigError(f"{where}: {key!r} is not a dotted config key (e.g. model.dropout)")
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{where}: {key} has no choices: give a list of at least one value")
        if any(isinstance(v, (dict, list)) for v in raw):
            raise ConfigError(f"{where}: {key}: choices must be plain values (numbers, text, "
                              "true/false), not lists or mappings")
        if len({json.dumps(v) for v in raw}) != len(raw):
            raise ConfigError(f"{where}: {key} lists a choice twice: {raw}")
        return Param(key, "choice", choices=tuple(raw))
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {key}: expected {{low: A, high: B}} (optionally log: true, "
                          f"int: true, step: S) or a list of choices, got {raw!r}")
    unknown = sorted(set(raw) - RANGE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: {key}: unknown field(s) {', '.join(map(str, unknown))} "
                          f"(a range takes {', '.join(sorted(RANGE_KEYS))})")
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"{where}: {key}: a range needs both low and high")
    low, high = raw["low"], raw["high"]
    if not (_number(low) and _number(high)):
        raise ConfigError(f"{where}: {key}: low and high must be numbers, got {low!r} and {high!r}")
    if low >= high:
        raise ConfigError(f"{where}: {key}: empty range (low {low} >= high {high}): "
                          "make low smaller than high, or list one value as [{low}]")
    log, step = raw.get("log", False), raw.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: {key}: log must be true or false, got {log!r}")
    as_int = raw.get("int", isinstance(low, int) and isinstance(high, int))
    if not isinstance(as_int, bool):
        raise ConfigError(f"{where}: {key}: int must be true or false, got {as_int!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: {key}: a log range needs low > 0, got {low}")
    if step is not None and (not _number(step) or step <= 0):
        raise ConfigError(f"{where}: {key}: step must be a positive number, got {step!r}")
    if step is not None and log:
        raise ConfigError(f"{where}: {key}: use either log or step, not both")
    if as_int:
        if low != int(low) or high != int(high):
            raise ConfigError(f"{where}: {key}: an integer range needs whole bounds, got {low}..{high}")
        return Param(key, "int", int(low), int(high), log, int(step) if step else None)
    return Param(key, "float", float(low), float(high), log, float(step) if step else None)


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def spec(self) -> dict[str, Any]:
        return {p.key: p.spec() for p in self.params}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.spec(), sort_keys=True).encode()).hexdigest()[:16]

    def difference(self, other_spec: dict[str, Any]) -> str:
        """One phrase saying how another space (its spec) differs from this one."""
        mine = self.spec()
        gone = sorted(set(other_spec) - set(mine))
        new = sorted(set(mine) - set(other_spec))
        changed = sorted(k for k in set(mine) & set(other_spec) if mine[k] != other_spec[k])
        parts = []
        if gone:
            parts.append(f"it searched {', '.join(gone)} too")
        if new:
            parts.append(f"it did not search {', '.join(new)}")
        for k in changed:
            parts.append(f"{k} was {_describe(other_spec[k])}, now {_describe(mine[k])}")
        return "; ".join(parts) or "same keys in another order"


def _describe(spec: dict[str, Any]) -> str:
    if "choices" in spec:
        return f"one of {spec['choices']}"
    text = f"{spec['kind']} {spec['low']}..{spec['high']}"
    return text + (" log" if spec.get("log") else "") + (f" step {spec['step']}" if spec.get("step") else "")


def parse_space(data: Any, where: str = "space") -> Space:
    """A Space from a mapping of dotted keys (see the module docstring). ConfigError otherwise."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where}: expected a mapping of dotted config keys to ranges or choices, "
                          "e.g. 'model.dropout: {low: 0.0, high: 0.5}'")
    return Space(tuple(_param(k, v, where) for k, v in data.items()))


def load_space(path: str | Path) -> Space:
    from lowres.config import read_yaml_file

    return parse_space(read_yaml_file(path, "search space file"), str(Path(path)))


def override(key: str, value: Any) -> str:
    """'key=value' as a config override (values written as YAML reads them back)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"{key}={text}"


def check_against_config(space: Space, config_path: str | Path, overrides: list[str]) -> None:
    """Load the base config with every bound and choice of every key: a key the config does not
    have, or a value it refuses, fails here, before a study or a directory exists."""
    from lowres import config as config_mod

    config_mod.load(config_path, list(overrides))  # the base alone first: its own errors
    for p in space.params:
        for value in p.bounds():
            try:
                cfg = config_mod.load(config_path, [*overrides, override(p.key, value)])
                if p.key.startswith("model."):
                    _check_model(cfg)
            except ConfigError as exc:
                raise ConfigError(f"search space key {p.key} = {value!r}: {exc}") from None


def _check_model(cfg) -> None:
    """The model's own checks (its name, head, drop path) run when it is built: build it on
    the meta device, which allocates nothing."""
    import torch

    from lowres.models.zoo import build_model

    with torch.device("meta"):
        build_model(cfg.model, cfg.data.classes or 10)
