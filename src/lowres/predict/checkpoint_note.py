"""One line saying which checkpoint `predict`/`evaluate` use and why (the rule that chose it).

A user who gets a score from best.pt should know it is not the last epoch, which rule picked
it, and how much evidence stood behind that pick (the val split's size).
"""
from __future__ import annotations

from pathlib import Path

from lowres.basics.intervals import accuracy_interval, fmt_interval_pct
from lowres.train.selection import small_split_warning

RULE_WORDS = {
    "smoothed_acc": "the highest mean val accuracy over the last {window} epochs",
    "val_acc": "the highest single-epoch val accuracy",
    "val_loss": "the lowest val loss",
    "last": "the last epoch (train.checkpoint_rule=last)",
}


def describe(path: Path, state: dict, requested: str, val_images: int | None) -> str:
    """'runs/r: best.pt = epoch 11 of 12 (raw weights), chosen by ...; val 34.9% (32.5-37.3)'."""
    run_dir = path.parent.parent
    epoch = state.get("position", {}).get("epoch")
    if state.get("kind") != "best":
        why = ("there is no best.pt yet" if requested == "best" else "--checkpoint last")
        return f"{run_dir}: using {path.name} = epoch {epoch}, the newest weights ({why})"
    best = state.get("best", {})
    cfg_train = state.get("config", {}).get("train", {})
    rule = best.get("rule") or "val_acc"  # runs before the rule was recorded used val_acc
    words = RULE_WORDS.get(rule, rule).format(window=cfg_train.get("checkpoint_window", 3))
    acc = best.get("val_acc")
    line = (f"{run_dir}: using best.pt = epoch {epoch} ({state.get('weights', 'raw')} weights), "
            f"chosen by {words}")
    if acc is not None:
        line += f"; val {100 * acc:.1f}%"
        bounds = accuracy_interval(acc, val_images)
        if bounds:
            line += f" {fmt_interval_pct(100 * bounds[0], 100 * bounds[1])} on {val_images} images"
    warning = small_split_warning(val_images or 0, rule)
    if warning:
        line += f"\n  note: {warning}"
    return line
