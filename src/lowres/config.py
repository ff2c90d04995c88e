"""The config: a tree of typed dataclasses, YAML in, dotted `key=value` overrides.

Everything has a default (the seed's final recipe) except `data.root`. Unknown keys and
wrong types are `ConfigError`s that name the key and the nearest valid one. The resolved
config is written into the run directory and is enough to rerun the run.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lowres.config_checks import OPTIMIZERS, SCHEDULERS, validate  # noqa: F401 (re-exported)
from lowres.config_tree import (  # noqa: F401 (re-exported: the config API lives here)
    apply_override, from_dict, merge, parse_override, to_dict, unshare)
from lowres.errors import ConfigError

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
    size: int | None = None  # resize (shorter side) + centre-crop every image to size x size
    #                          when caching, for folders of mixed-size photos; None: never resize
    image_column: str | None = None  # tables (HF datasets, parquet): the image column; None: detect
    label_column: str | None = None  # tables: the label column; None: detect (ClassLabel, "label")


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
    augment_masking: str = "auto"  # auto (where on accelerators, subset on CPU) | subset | where
    compile_augment: str = "no"  # yes: the augmentation ops as one compiled graph (needs where)
    cudnn_benchmark: bool = True
    ema: float = 0.0  # EMA decay of the weights (e.g. 0.999); 0 = off
    threads: int | None = None  # CPU threads for torch; default: all cores (shared under torchrun)
    checkpoint_minutes: float = 10.0  # also save last.pt mid-epoch at most this often; 0 = off
    # Which epoch's weights become best.pt (train/selection.py; evidence in
    # benchmarks/RESULTS.md, "Checkpoint choice"): val_loss (lowest val cross-entropy) |
    # val_acc (highest single epoch) | smoothed_acc (mean val acc of the last
    # checkpoint_window epochs) | last
    checkpoint_rule: str = "val_loss"
    checkpoint_window: int = 3
    on_nan: str = "stop"  # a NaN/inf loss: stop (nothing bad saved) | skip_step (undo the step)
    nan_max_skips: int = 20  # skip_step: stop after more than this many skipped steps


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
    merged = merge(tree, unshare(values))
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(merged, parts, value)
    cfg = from_dict(Config, merged)
    validate(cfg, require_root=require_root)
    return cfg


def load(path: str | Path, overrides: list[str] = (), require_root: bool = True) -> Config:
    return build(load_yaml(path), overrides, require_root=require_root)


def save(cfg: Config, path: str | Path) -> None:
    from lowres.disk import replace_text  # noqa: PLC0415

    replace_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))  # a kill: old or new
