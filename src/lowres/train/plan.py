"""Stop rules of a stage: max epochs, "N epochs after the K-th LR drop", early stopping.

The seed's rule ("wait for the accuracy jump after the first LR drop, train one more
epoch, stop") is `after_lr_drop: 1, extra_epochs: 2`: the epoch that follows the drop
shows the jump, one more epoch runs, then the stage ends.
"""
from __future__ import annotations

from lowres.config import StageConfig
from lowres.train.saved_fields import SavedFields


class StopRule(SavedFields):
    SAVED = ("lr_drops", "epochs_since_kth_drop", "best", "epochs_since_best")  # in checkpoints

    def __init__(self, stage: StageConfig):
        self.stage = stage
        self.lr_drops = 0
        self.epochs_since_kth_drop: int | None = None
        self.best: float | None = None
        self.epochs_since_best = 0

    def update(self, stage_epoch: int, lr_dropped: bool, val_acc: float | None) -> str | None:
        """Record one finished epoch; the reason to stop the stage now, or None."""
        rule = self.stage.stop
        if val_acc is not None and val_acc == val_acc:  # not NaN
            if self.best is None or val_acc > self.best:
                self.best = val_acc
                self.epochs_since_best = 0
            else:
                self.epochs_since_best += 1
        if self.epochs_since_kth_drop is not None:
            self.epochs_since_kth_drop += 1
        if lr_dropped:
            self.lr_drops += 1
            if rule.after_lr_drop is not None and self.lr_drops == rule.after_lr_drop:
                self.epochs_since_kth_drop = 0
        if (rule.after_lr_drop is not None and self.epochs_since_kth_drop is not None
                and self.epochs_since_kth_drop >= rule.extra_epochs):
            return (f"{rule.extra_epochs} epoch(s) after LR drop #{rule.after_lr_drop} "
                    f"(stop.after_lr_drop={rule.after_lr_drop}, extra_epochs={rule.extra_epochs})")
        if rule.patience is not None and self.epochs_since_best >= rule.patience:
            return f"no val_acc improvement for {rule.patience} epochs (stop.patience)"
        if stage_epoch >= self.stage.epochs:
            n = self.stage.epochs
            return f"reached the stage's limit of {n} epoch{'' if n == 1 else 's'}"
        return None

    def describe(self) -> str:
        rule = self.stage.stop
        epochs = self.stage.epochs
        parts = [f"at most {epochs} epoch{'' if epochs == 1 else 's'}"]
        if rule.after_lr_drop is not None:
            n = rule.extra_epochs
            parts.append(f"{n} epoch{'' if n == 1 else 's'} after LR drop #{rule.after_lr_drop}")
        if rule.patience is not None:
            parts.append(f"{rule.patience} epochs without val improvement")
        return ", or ".join(parts)
