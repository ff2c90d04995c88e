"""The config: a tree of typed dataclasses, YAML in, dotted `key=value` overrides.

The package owns the schema (this module: every key, the seed's recipe, load/save and the
rules across keys) and the generic converter (tree.py). May import: basics and errors, and
augment lazily (to check augmentation specs); every package above may import it.

Everything has a default (the seed's final recipe) except `data.root`. Each key's
annotation carries its type, choices or range and a one-line description, enforced by the
generic converter in tree.py and listed by `lowres options`. Names that an
implementation module owns (schedulers, optimizers, stems, heads, inits, checkpoint rules)
are `one_of("module:TABLE")`, read from that table when a config is checked: the table is
the only list, and importing the config stays free of torch. Rules that span several keys
are in `validate` below. Unknown keys and wrong types are `ConfigError`s that name the key
and the nearest valid one. The resolved config is written into the run directory and is
enough to rerun the run.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from lowres.basics.checks import duration, integer, number, one_of
from lowres.config.tree import (  # noqa: F401 (re-exported: the config API lives here)
    apply_override, checked, from_dict, merge, parse_override, to_dict, unshare)
from lowres.errors import ConfigError

# YAML 1.1 reads yes/no as booleans; the converter turns them back into these names.
YesNoAuto = Literal["auto", "yes", "no"]
YesNo = Literal["yes", "no"]
Positive = integer(1)

# --------------------------------------------------------------------------- schema


@dataclass
class DataConfig:
    root: Annotated[str, "dataset directory (competition layout or class folders); required"] = ""
    val_fraction: Annotated[float, number(0.0, 0.9),
                            "stratified, seeded hold-out of the labelled images"] = 0.01
    val_dir: Annotated[str | None, "a labelled folder to validate on instead of a split"] = None
    classes: Annotated[int | None, Positive, "keep only the first K classes (quick experiments)"] = None
    per_class: Annotated[int | None, Positive, "keep at most N images per class"] = None
    cache_dir: Annotated[str | None, "where decoded uint8 arrays live; default ~/.cache/lowres"] = None
    resident: Annotated[YesNoAuto, "keep the uint8 dataset on the device"] = "auto"
    size: Annotated[int | None, integer(4, 1024),
                    "resize (shorter side) + centre-crop every image to size x size when caching, "
                    "for folders of mixed-size photos; null: never resize"] = None
    image_column: Annotated[str | None, "tables (HF datasets, parquet): the image column; "
                                        "null: detect"] = None
    label_column: Annotated[str | None, "tables: the label column; null: detect (ClassLabel, "
                                        "'label')"] = None


@dataclass
class ModelConfig:
    name: Annotated[str, "a model of `lowres models`, or timm:<name>; checked by the zoo"] = "resnet50"
    stem: Annotated[str, one_of("lowres.models.stems:STEMS"),
                    "k4: Conv 4x4/1 no pad, no max-pool (seed final); k3: 3x3 pad 1; imagenet"] = "k4"
    dropout: Annotated[float, number(0.0, 0.99), "before the classifier"] = 0.8
    head: Annotated[str, one_of("lowres.models.heads:HEADS"),
                    "linear, or mlp (Dropout, Linear, BN1d, ReLU, Linear: the seed's exp 5)"] = "linear"
    head_hidden: Annotated[int, "the mlp head's hidden width"] = 2048
    init: Annotated[str, one_of("lowres.models.init:INITS"),
                    "he_normal: N(0, 2/fan_in) on every conv/linear weight; default: PyTorch's "
                    "U[-1/sqrt(fan_in), ..]; torchvision: its builders' own"] = "he_normal"
    drop_path: Annotated[float, number(0.0, 0.9), "stochastic depth rate (last block); 0 = off"] = 0.0


@dataclass
class TrainConfig:
    batch_size: Annotated[int, Positive, "training images per step (over all ranks)"] = 200
    eval_batch_size: Annotated[int, Positive, "images per evaluation batch"] = 1000
    label_smoothing: Annotated[float, number(0.0, 0.99), "of the training loss"] = 0.1
    device: Annotated[str, "auto | cpu | cuda | cuda:N"] = "auto"
    precision: Annotated[Literal["auto", "fp32", "bf16", "fp16"],
                         "auto: by the GPU's row of train/device.GENERATIONS: bf16 from sm_80, "
                         "fp16 from sm_70 (with a grad scaler), fp32 below; fp32 on the CPU"] = "auto"
    channels_last: Annotated[YesNoAuto, "auto: by the GPU's row of train/device.GENERATIONS: yes "
                                        "from sm_70 (tensor cores read NHWC), no below; yes on "
                                        "the CPU (oneDNN: faster)"] = "auto"
    compile: Annotated[YesNoAuto, "torch.compile the model; auto: by the GPU's row of "
                                  "train/device.GENERATIONS: yes from sm_80, no below (Triton "
                                  "supports sm_80+; yes is allowed from sm_70); no on the CPU"] = "auto"
    augment_masking: Annotated[Literal["auto", "subset", "where"],
                               "auto: where on accelerators, subset on CPU"] = "auto"
    compile_augment: Annotated[YesNo, "yes: the augmentation ops as one compiled graph (needs "
                                      "where; on a GPU sm_70+, as train.compile=yes)"] = "no"
    cudnn_benchmark: Annotated[bool, "let cuDNN pick the fastest convolution algorithms"] = True
    ema: Annotated[float, number(0.0, 0.999999), "EMA decay of the weights (e.g. 0.999); 0 = off"] = 0.0
    threads: Annotated[int | None, "CPU threads for torch; default: all cores (shared under "
                                   "torchrun)"] = None
    budget: Annotated[str | None, duration,
                      "wall time for the whole plan (e.g. 5m): every stage's epochs are scaled, "
                      "keeping their proportions, so the plan and its schedules end within it "
                      "(timed on the first steps, re-estimated each epoch; train/time_budget.py)"
                      ] = None
    checkpoint_minutes: Annotated[float, number(0.0), "also save last.pt mid-epoch at most this "
                                                      "often; 0 = off"] = 10.0
    # Evidence for the rules in benchmarks/RESULTS.md, "Checkpoint choice".
    checkpoint_rule: Annotated[str, one_of("lowres.train.selection:RULES"),
                               "which epoch's weights become best.pt (train/selection.py)"] = "val_loss"
    checkpoint_window: Annotated[int, Positive, "epochs smoothed_acc averages over"] = 3
    on_nan: Annotated[str, one_of("lowres.train.nan_guard:ON_NAN"),
                      "a NaN/inf loss: stop (nothing bad saved) or skip_step (undo the step)"] = "stop"
    nan_max_skips: Annotated[int, integer(0), "skip_step: stop after more than this many skipped "
                                              "steps"] = 20


def _lr_or_find(key: str, value: Any) -> Any:
    """optimizer.lr: a positive number, or "find" (train/lr_find.py: the LR range test at
    the stage's start picks the number, which then replaces "find" in the run's config.yaml)."""
    return value if value == "find" else _POSITIVE_LR(key, value)


_POSITIVE_LR = number(0.0, low_open=True)
_lr_or_find.shows = "> 0.0, or find"  # what `lowres options` prints (basics.checks.shows)


@dataclass
class OptimizerConfig:
    name: Annotated[str, one_of("lowres.train.optim:OPTIMIZERS"), "the optimizer"] = "sgd"
    lr: Annotated[float | Literal["find"], _lr_or_find,
                  "peak learning rate; find: an LR range test at the stage's start chooses it "
                  "(`lowres lr-find`), and the run's config.yaml keeps the number"] = 0.1
    momentum: Annotated[float, "SGD only"] = 0.9
    nesterov: Annotated[bool, "SGD only: Nesterov momentum"] = False
    weight_decay: Annotated[float, "L2 penalty (decoupled for adamw)"] = 1e-4
    betas: Annotated[list[float], "Adam/AdamW: two numbers"] = field(default_factory=lambda: [0.9, 0.999])
    decay_norm_and_bias: Annotated[bool, "false: no weight decay on norm layers and biases"] = True


@dataclass
class SchedulerConfig:
    name: Annotated[str, one_of("lowres.train.schedules:SCHEDULES"),
                    "the LR schedule (train/schedules.py)"] = "plateau"
    warmup_epochs: Annotated[float, "linear warm-up from warmup_start * lr (cosine, "
                                    "cosine_restarts)"] = 0.0
    warmup_start: Annotated[float, "the warm-up's first LR, as a fraction of lr"] = 0.01
    min_lr: Annotated[float, "the floor of cosine and plateau"] = 0.0
    step_epochs: Annotated[int, "step: decay every this many epochs"] = 30
    milestones: Annotated[list[int], "multistep: the epochs that decay"] = field(default_factory=list)
    gamma: Annotated[float, "step/multistep: the decay factor"] = 0.1
    cycle_epochs: Annotated[int, "cosine_restarts: the first cycle's length, each with its own "
                                 "warm-up"] = 7
    cycle_mult: Annotated[float, "cosine_restarts: each cycle this much longer"] = 1.0
    # plateau: torch ReduceLROnPlateau semantics, stepped once per epoch on `monitor`
    monitor: Annotated[Literal["val_acc", "val_loss", "train_acc", "train_loss"],
                       "plateau: the metric watched"] = "val_acc"
    mode: Annotated[Literal["auto", "max", "min"],
                    "plateau: auto is max for accuracies, min for losses"] = "auto"
    patience: Annotated[int, "plateau: epochs without improvement before a drop"] = 7
    cooldown: Annotated[int, "plateau: epochs to wait after a drop"] = 1
    factor: Annotated[float, "plateau: the LR is multiplied by this on a drop"] = 0.1
    threshold: Annotated[float, "plateau: the least change that counts as improvement"] = 1e-4
    threshold_mode: Annotated[Literal["rel", "abs"], "plateau: threshold relative or absolute"] = "rel"
    pct_start: Annotated[float, "onecycle: fraction of the steps rising to lr"] = 0.3
    div_factor: Annotated[float, "onecycle: start at lr / div_factor"] = 25.0
    final_div_factor: Annotated[float, "onecycle: end at the start LR / final_div_factor"] = 1e4


@dataclass
class StopConfig:
    after_lr_drop: Annotated[int | None, Positive,
                             "stop once the K-th LR drop has happened and ..."] = None
    extra_epochs: Annotated[int, "... this many more epochs have run (seed: the jump epoch + 1)"] = 2
    patience: Annotated[int | None, "early stopping: no val improvement for P epochs"] = None


@dataclass
class StageConfig:
    name: Annotated[str, "the stage's name in logs and plots"] = ""
    epochs: Annotated[int, Positive, "the most epochs this stage runs"] = 70
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    augment: Annotated[list[dict], "augmentation ops (README, Augmentation); default: the seed's "
                                   "stage-1 pipeline"] = field(
        default_factory=lambda: copy.deepcopy(SEED_STAGE1_AUGMENT))
    stop: StopConfig = field(default_factory=StopConfig)
    reset_optimizer: Annotated[bool, "fresh optimizer and scheduler at the start of the stage"] = True


@dataclass
class TrackConfig:
    tensorboard: Annotated[bool, "also write TensorBoard event files"] = False
    report: Annotated[bool, "regenerate report.html after every epoch"] = True
    plots: Annotated[bool, "draw the curves as PNG files"] = True


@dataclass
class Config:
    seed: Annotated[int, "seeds the split, the initialisation and the augmentation draws"] = 0
    name: Annotated[str, "run name; default: config file stem + time stamp"] = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stages: Annotated[list[StageConfig], "the training plan; a list in a file replaces the default "
                                         "plan whole"] = field(default_factory=lambda: seed_final_stages())
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


def read_yaml_file(path: str | Path, what: str) -> Any:
    """A YAML file's content; one ConfigError line naming `what` it is when the file is
    missing or not YAML (with the line of the problem)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path} (pass the path of a .yaml file)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{what} {path} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', exc)}") from None


def load_yaml(path: str | Path) -> dict:
    data = read_yaml_file(path, "config file")
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


def validate(cfg: Config, require_root: bool = True) -> None:
    """The rules that span several keys (each key's own type, choices and range were
    checked when the tree was converted)."""
    if require_root and not cfg.data.root:
        raise ConfigError("config key 'data.root' is missing: set it in the file or pass "
                          "data.root=PATH on the command line")
    if not cfg.stages:
        raise ConfigError("config key 'stages' is empty: give at least one stage")
    for i, stage in enumerate(cfg.stages):
        at = f"stages.{i}"
        if len(stage.optimizer.betas) != 2:
            raise ConfigError(f"config key '{at}.optimizer.betas': expected two numbers, "
                              f"got {stage.optimizer.betas}")
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
        # The augment package knows every op and its parameters; it needs torch, so it is
        # imported only when a config is checked.
        from lowres.augment import validate_spec

        validate_spec(stage.augment, where=f"{at}.augment")


def load(path: str | Path, overrides: list[str] = (), require_root: bool = True) -> Config:
    return build(load_yaml(path), overrides, require_root=require_root)


def save(cfg: Config, path: str | Path) -> None:
    from lowres.basics.disk import replace_text

    replace_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))  # a kill: old or new
