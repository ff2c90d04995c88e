"""Validation of a resolved config: choices, ranges, and rules that span several keys."""
from __future__ import annotations

from typing import TYPE_CHECKING

from lowres.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from lowres.config import Config

_CHOICES = {
    "model.stem": ("k4", "k3", "imagenet"),
    "model.head": ("linear", "mlp"),
    "model.init": ("he_normal", "default", "torchvision"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "train.channels_last": ("auto", "yes", "no"),
    "train.compile": ("auto", "yes", "no"),
    "train.augment_masking": ("auto", "subset", "where"),
    "train.on_nan": ("stop", "skip_step"),
    "train.compile_augment": ("yes", "no"),
    "data.resident": ("auto", "yes", "no"),
    "train.checkpoint_rule": ("val_loss", "val_acc", "smoothed_acc", "last"),  # train/selection.py
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
    if cfg.train.nan_max_skips < 0:
        raise ConfigError(f"config key 'train.nan_max_skips': must be 0 or more, got "
                          f"{cfg.train.nan_max_skips}")
    if cfg.train.checkpoint_minutes < 0:
        raise ConfigError(f"config key 'train.checkpoint_minutes': must be 0 (off) or positive, "
                          f"got {cfg.train.checkpoint_minutes}")
    if cfg.data.size is not None and not 4 <= cfg.data.size <= 1024:
        raise ConfigError(f"config key 'data.size': {cfg.data.size} is outside [4, 1024] "
                          f"(the side of the square images, e.g. data.size=40)")
    for where, value in (("data.classes", cfg.data.classes), ("data.per_class", cfg.data.per_class),
                         ("train.batch_size", cfg.train.batch_size),
                         ("train.eval_batch_size", cfg.train.eval_batch_size),
                         ("train.checkpoint_window", cfg.train.checkpoint_window)):
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
