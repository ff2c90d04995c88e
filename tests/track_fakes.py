"""Fabricate run directories in the runlog format (tests only)."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from lowres.basics.disk import replace_text
from lowres.run.log import RunLog

BASE_CONFIG: dict[str, Any] = {
    "seed": 0,
    "name": "run",
    "data": {"root": "/data/tiny", "val_fraction": 0.01},
    "model": {"name": "resnet18", "dropout": 0.8, "init": "he_normal"},
    "train": {"batch_size": 200, "ema": 0.0},
    "stages": [
        {"name": "stage1", "epochs": 6,
         "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
         "scheduler": {"name": "plateau"},
         "augment": [{"op": "hflip", "p": 0.25}], "stop": {"patience": None},
         "reset_optimizer": True},
        {"name": "stage2", "epochs": 4,
         "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
         "scheduler": {"name": "constant"},
         "augment": [{"op": "hflip", "p": 0.25}, {"op": "randaugment", "num_ops": 2}],
         "stop": {"patience": None}, "reset_optimizer": True},
    ],
    "track": {"tensorboard": False, "report": True, "plots": True},
}


def config(**dotted: Any) -> dict:
    """BASE_CONFIG with dotted overrides: config(**{"stages.0.optimizer.lr": 0.2})."""
    cfg = copy.deepcopy(BASE_CONFIG)
    for key, value in dotted.items():
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return cfg


def make_run(run_dir: Path, epochs: int = 10, cfg: dict | None = None, state: str = "finished",
             last_pt: bool = True, ema: bool = False, acc_offset: float = 0.0,
             stage_split: int | None = 6, pid: int | None = None, host: str | None = None,
             drops: tuple[int, ...] = (3,), write_config: bool = True) -> Path:
    run_dir = Path(run_dir)
    log = RunLog(run_dir)
    cfg = cfg if cfg is not None else config()
    if write_config:
        replace_text(run_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    replace_text(run_dir / "env.json", '{"python": "3.x", "torch": "2.x", "device": "cpu"}\n')
    log.event("run_start", epoch=0)
    log.event("stage_start", epoch=0, stage=0, name="stage1")
    lr = 0.1
    elapsed = 0.0
    best = -1.0
    for e in range(1, epochs + 1):
        stage = 0 if stage_split is None or e <= stage_split else 1
        if stage_split is not None and e == stage_split + 1:
            log.event("stage_start", epoch=e - 1, stage=1, name="stage2")
            lr = 0.01
        acc = min(0.95, 0.1 + 0.06 * e + acc_offset)
        elapsed += 2.5
        row = {"epoch": e, "stage": stage, "stage_name": f"stage{stage + 1}",
               "stage_epoch": e if stage == 0 else e - stage_split, "lr": lr,
               "train_loss": 3.0 * math.exp(-e / 10), "train_acc": acc + 0.02,
               "val_loss": 3.1 * math.exp(-e / 12), "val_acc": acc,
               "ema_val_loss": 3.0 * math.exp(-e / 12) if ema else None,
               "ema_val_acc": acc + 0.005 if ema else None,
               "images_per_s": 1000.0 + e, "seconds": 2.5, "elapsed": elapsed}
        log.append_metrics(row)
        if e in drops:  # decided after epoch e; epoch e + 1 is the first at the new rate
            lr /= 10
            log.event("lr_drop", epoch=e, stage=stage, lr=lr)
        if acc > best:
            best = acc
            log.event("best", epoch=e, val_acc=acc)
    if last_pt:
        (run_dir / "checkpoints" / "last.pt").write_bytes(b"fake")
    if state == "finished":
        log.event("run_end", best_val_acc=best)
    elif state == "stopped":
        log.event("interrupted", epoch=epochs, step=10, reason="SIGTERM")
    extra = {}
    if pid is not None:
        extra["pid"] = pid
    if host is not None:
        extra["host"] = host
    log.set_status(state, **extra)
    return run_dir
