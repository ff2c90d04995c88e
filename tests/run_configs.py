"""Test helpers shared across test folders (a unique module name: conftest.py files clash)."""
from __future__ import annotations

from pathlib import Path

import yaml


def write_config(path: Path, data_root: Path, **sections) -> Path:
    """A fast config: resnet8 at batch 16 on the CPU, one short stage, unless sections say
    otherwise (the CPU: bitwise comparisons need it, also on a machine with a GPU)."""
    cfg = {
        "seed": 0,
        "data": {"root": str(data_root), "val_fraction": 0.25},
        "model": {"name": "resnet8", "stem": "k3", "dropout": 0.1},
        "train": {"batch_size": 16, "eval_batch_size": 64, "device": "cpu"},
        "stages": [{"epochs": 2, "scheduler": {"name": "cosine"},
                    "augment": [{"op": "hflip", "p": 0.5},
                                {"op": "erasing", "p": 0.5, "ratio": [1, 1]}]}],
        "track": {"plots": False, "report": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def error_lines(capsys) -> list[str]:
    """stderr lines of a command, without its warnings (e.g. a small val split's): what a
    test of a one-line error looks at."""
    return [line for line in capsys.readouterr().err.strip().splitlines()
            if not line.startswith("lowres: warning:")]
