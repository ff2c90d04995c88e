"""The config: a tree of typed dataclasses, YAML in, dotted `key=value` overrides.

Everything has a default (the seed's final recipe) except `data.root`. Unknown keys and
wrong types are `ConfigError`s that name the key and the nearest valid one. The resolved
config is written into the run directory and is enough to rerun the run.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from lowres.errors import ConfigError, did_you_mean

# --------------------------------------------------------------------------- schema


@dataclass
class DataConfig:
    root: str = ""  # dataset directory (competition layout or class folders); required
    val_fraction: float = 0.01  # stratified, seeded hold-out of the labelled images
    val_dir: str | None = None  # a labelled folder to validate on instead of a split
    classes: int | None = None  # keep only the first K classes (quick experiments)
    per_class: int | None = None  # keep at most N images per class
    cache_dir: str | None = None  # where decoded uint8 arrays live; default ~/.cache/lowres
    resident: str = "auto"  # keep the uint8 dataset on the device: auto | yes | no


@dataclass
class ModelConfig:
    name: str = "resnet50"  # see `lowres models`
    stem: str = "k4"  # k4: Conv 4x4/1 no pad, no max-pool (seed final); k3: 3x3 pad 1; imagenet
    dropout: float = 0.8  # before the classifier
    head: str = "linear"  # linear | mlp (Dropout, Linear, BN1d, ReLU, Linear: the seed's exp 5)
    head_hidden: int = 2048
    init: str = "he_normal"  # he_normal: N(0, 2/fan_in) on every conv/linear weight | default
    #                          (PyTorch's U[-1/sqrt(fan_in), ..]) | torchvision (its builders' own)
    drop_path: float = 0.0  # stochastic depth rate (last block); 0 = off


@dataclass
class TrainConfig:
    batch_size: int = 200
    eval_batch_size: int = 1000
    label_smoothing: float = 0.1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    channels_last: str = "auto"  # auto (yes: faster on CUDA and CPU) | yes | no
    compile: str = "auto"  # auto (yes on CUDA) | yes | no
    cudnn_benchmark: bool = True
    ema: float = 0.0  # EMA decay of the weights (e.g. 0.999); 0 = off
    threads: int | None = None  # CPU threads for torch; default: all cores
    checkpoint_minutes: float = 10.0  # also save last.pt mid-epoch this often


@dataclass
class OptimizerConfig:
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.1
    momentum: float = 0.9  # SGD only
    nesterov: bool = False
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    decay_norm_and_bias: bool = True  # False: no weight decay on norm layers and biases


@dataclass
class SchedulerConfig:
    name: str = "plateau"  # constant | step | multistep | cosine | cosine_restarts | plateau | onecycle
    warmup_epochs: float = 0.0  # linear warm-up from warmup_start * lr (cosine, cosine_restarts)
    warmup_start: float = 0.01
    min_lr: float = 0.0
    # step / multistep
    step_epochs: int = 30
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    # cosine_restarts: a cycle of `cycle_epochs`, each with its own warm-up, growing by cycle_mult
    cycle_epochs: int = 7
    cycle_mult: float = 1.0
    # plateau (torch ReduceLROnPlateau semantics, stepped once per epoch on `monitor`)
    monitor: str = "val_acc"  # val_acc | val_loss | train_acc | train_loss
    mode: str = "auto"  # auto (max for accuracies, min for losses) | max | min
    patience: int = 7
    cooldown: int = 1
    factor: float = 0.1
    threshold: float = 1e-4
    threshold_mode: str = "rel"  # rel | abs
    # onecycle
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4


@dataclass
class StopConfig:
    after_lr_drop: int | None = None  # stop once the K-th LR drop has happened and ...
    extra_epochs: int = 2  # ... this many more epochs have run (seed: the jump epoch + 1)
    patience: int | None = None  # early stopping: no val improvement for P epochs


@dataclass
class StageConfig:
    name: str = ""
    epochs: int = 70  # the most epochs this stage runs
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    augment: list[dict] = field(default_factory=lambda: copy.deepcopy(SEED_STAGE1_AUGMENT))
    stop: StopConfig = field(default_factory=StopConfig)
    reset_optimizer: bool = True  # fresh optimizer and scheduler at the start of the stage


@dataclass
class TrackConfig:
    tensorboard: bool = False
    report: bool = True  # regenerate report.html after every epoch
    plots: bool = True


@dataclass
class Config:
    seed: int = 0
    name: str = ""  # run name; default: config file stem + time stamp
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stages: list[StageConfig] = field(default_factory=lambda: seed_final_stages())
    track: TrackConfig = field(default_factory=TrackConfig)


# The seed's augmentation pipelines (DIGEST.md, final recipe). The flip is the seed's
# RandomChoice(HFlip(p=.25), VFlip(p=.25)); erasing is square (ratio 1:1), torchvision defaults.
SEED_FLIP = {"op": "random_choice", "ops": [{"op": "hflip", "p": 0.25}, {"op": "vflip", "p": 0.25}]}
SEED_ERASING = {"op": "erasing", "p": 0.5, "scale": [0.02, 0.33], "ratio": [1.0, 1.0], "value": "zeros"}
SEED_STAGE1_AUGMENT = [
    SEED_FLIP,
    {"op": "grayscale", "p": 0.1},
    {"op": "gaussian_blur", "p": 1.0, "kernel_size": 3, "sigma": [0.1, 2.0]},
    SEED_ERASING,
]
SEED_STAGE2_AUGMENT = [
    SEED_FLIP,
    {"op": "randaugment", "num_ops": 2, "magnitude": 9, "num_magnitude_bins": 31},
    SEED_ERASING,
]


def seed_final_stages() -> list[StageConfig]:
    """The seed's final 3-stage plan: 70 + 30 epochs with plateau, then 1 epoch at lr 0.01."""
    seed_stop = StopConfig(after_lr_drop=1, extra_epochs=2)
    return [
        StageConfig(name="stage1", epochs=70, stop=copy.deepcopy(seed_stop),
                    augment=copy.deepcopy(SEED_STAGE1_AUGMENT)),
        StageConfig(name="stage2", epochs=30, stop=copy.deepcopy(seed_stop),
                    augment=copy.deepcopy(SEED_STAGE2_AUGMENT)),
        StageConfig(name="stage3", epochs=1, optimizer=OptimizerConfig(lr=0.01),
                    scheduler=SchedulerConfig(name="constant"),
                    augment=copy.deepcopy(SEED_STAGE2_AUGMENT)),
    ]


# --------------------------------------------------------------------------- conversion


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
        if isinstance(value, bool) and where.endswith(("channels_last", "compile", "resident")):
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


# --------------------------------------------------------------------------- loading


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass the path of a .yaml file)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where} is not valid YAML: "
                          f"{getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys (seed, data, model, ...)")
    return data


def build(values: dict, overrides: list[str] = (), require_root: bool = True) -> Config:
    """Resolve a config: defaults <- file values <- overrides, then validate."""
    tree = to_dict(Config())
    # File values replace defaults key by key; a `stages` list from a file replaces the
    # default plan whole, and from_dict fills each of its stages' own defaults.
    merged = _merge(tree, _unshare(values))
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(merged, parts, value)
    cfg = from_dict(Config, merged)
    validate(cfg, require_root=require_root)
    return cfg


def _unshare(value: Any) -> Any:
    """A copy in which no two places share an object. YAML anchors (&a / *a) make aliases,
    and an override of one place must not change the others."""
    if isinstance(value, dict):
        return {k: _unshare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshare(v) for v in value]
    return value


def _merge(defaults: dict, values: dict) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict) \
                and key not in ("augment",):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(path: str | Path, overrides: list[str] = (), require_root: bool = True) -> Config:
    return build(load_yaml(path), overrides, require_root=require_root)


def save(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


# --------------------------------------------------------------------------- validation

_CHOICES = {
    "model.stem": ("k4", "k3", "imagenet"),
    "model.head": ("linear", "mlp"),
    "model.init": ("he_normal", "default", "torchvision"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.channels_last": ("auto", "yes", "no"),
    "train.compile": ("auto", "yes", "no"),
    "data.resident": ("auto", "yes", "no"),
}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("constant", "step", "multistep", "cosine", "cosine_restarts", "plateau", "onecycle")


def _check_choice(where: str, value: str, choices) -> None:
    if value not in choices:
        raise ConfigError(f"config key '{where}': '{value}' is not one of {', '.join(choices)}"
                          f"{did_you_mean(value, choices) if len(choices) > 1 else ''}")


def _check_range(where: str, value: float, low: float, high: float, note: str = "") -> None:
    if not low <= value <= high:
        raise ConfigError(f"config key '{where}': {value} is outside [{low}, {high}]{note}")


def validate(cfg: Config, require_root: bool = True) -> None:
    if require_root and not cfg.data.root:
        raise ConfigError("config key 'data.root' is missing: set it in the file or pass "
                          "data.root=PATH on the command line")
    for where, choices in _CHOICES.items():
        section, key = where.split(".")
        _check_choice(where, getattr(getattr(cfg, section), key), choices)
    _check_range("data.val_fraction", cfg.data.val_fraction, 0.0, 0.9)
    _check_range("model.dropout", cfg.model.dropout, 0.0, 0.99)
    _check_range("model.drop_path", cfg.model.drop_path, 0.0, 0.9)
    _check_range("train.label_smoothing", cfg.train.label_smoothing, 0.0, 0.99)
    _check_range("train.ema", cfg.train.ema, 0.0, 0.999999)
    for where, value in (("data.classes", cfg.data.classes), ("data.per_class", cfg.data.per_class),
                         ("train.batch_size", cfg.train.batch_size),
                         ("train.eval_batch_size", cfg.train.eval_batch_size)):
        if value is not None and value < 1:
            raise ConfigError(f"config key '{where}': must be at least 1, got {value}")
    if not cfg.stages:
        raise ConfigError("config key 'stages' is empty: give at least one stage")
    for i, stage in enumerate(cfg.stages):
        at = f"stages.{i}"
        if stage.epochs < 1:
            raise ConfigError(f"config key '{at}.epochs': must be at least 1, got {stage.epochs}")
        _check_choice(f"{at}.optimizer.name", stage.optimizer.name, OPTIMIZERS)
        _check_choice(f"{at}.scheduler.name", stage.scheduler.name, SCHEDULERS)
        _check_choice(f"{at}.scheduler.monitor", stage.scheduler.monitor,
                      ("val_acc", "val_loss", "train_loss", "train_acc"))
        _check_choice(f"{at}.scheduler.mode", stage.scheduler.mode, ("auto", "max", "min"))
        _check_choice(f"{at}.scheduler.threshold_mode", stage.scheduler.threshold_mode, ("rel", "abs"))
        if stage.optimizer.lr <= 0:
            raise ConfigError(f"config key '{at}.optimizer.lr': must be positive, got {stage.optimizer.lr}")
        if len(stage.optimizer.betas) != 2:
            raise ConfigError(f"config key '{at}.optimizer.betas': expected two numbers, "
                              f"got {stage.optimizer.betas}")
        if stage.stop.after_lr_drop is not None and stage.stop.after_lr_drop < 1:
            raise ConfigError(f"config key '{at}.stop.after_lr_drop': must be at least 1")
        if not stage.reset_optimizer:
            if i == 0:
                raise ConfigError(f"config key '{at}.reset_optimizer': the first stage has no "
                                  f"optimizer to carry over (set it to true)")
            before = cfg.stages[i - 1].optimizer
            if (before.name, before.decay_norm_and_bias) != (stage.optimizer.name,
                                                             stage.optimizer.decay_norm_and_bias):
                raise ConfigError(f"config key '{at}.reset_optimizer': false carries the "
                                  f"optimizer over, so {at}.optimizer.name and "
                                  f"decay_norm_and_bias must match stages.{i - 1}")
        # Augmentation specs are checked by the augment package, which knows every op.
        from lowres.augment import validate_spec  # noqa: PLC0415 (augment imports config)
        validate_spec(stage.augment, where=f"{at}.augment")
