"""The model zoo: `build_model(cfg, num_classes)` and friends. See zoo.py for the rules.

The zoo (and torchvision with it) is imported on first use of these names, not by
`import lowres.models.heads` and the like: the config reads the stems, heads and inits
tables from their modules when it checks a config.
May import: basics, config, errors (and timm, lazily, for `timm:<name>`).
"""
from __future__ import annotations

import importlib

__all__ = ["build_model", "model_names", "describe_models", "count_parameters", "count_flops"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("lowres.models.zoo"), name)
    raise AttributeError(f"module 'lowres.models' has no attribute {name!r}")
