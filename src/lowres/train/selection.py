"""Which epoch's weights become best.pt: a rule that a small validation split cannot fool.

On a split of a few hundred images, one epoch's accuracy moves by several points from
noise alone, so "the highest val accuracy so far" mostly picks a lucky epoch (measured in
benchmarks/RESULTS.md, "Checkpoint choice"). The rules here are pure functions of the
metric history so that every rank takes the same decision from the same numbers.

Rules (train.checkpoint_rule):
  val_loss      the lowest val loss (cross-entropy without label smoothing): the default.
                It averages every image's confidence, not only its argmax, so it moves less
                from noise than accuracy on the same images; ties go to the later epoch
  val_acc       the highest single-epoch val accuracy; ties keep the earlier epoch (the
                classic rule, kept for comparison and for users who want it)
  smoothed_acc  the mean val accuracy of the last `window` epochs; ties go to the later
                epoch (same evidence, more training). It lags: after a stage boundary the
                new stage's warm-up dip stays in the window for `window` epochs
  last          the newest weights, always
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Sequence

from lowres.basics.intervals import half_width_points

RULES = ("val_loss", "val_acc", "smoothed_acc", "last")

# The weights that can compete for best.pt and the metrics.csv columns that score them.
WEIGHTS = {"raw": ("val_acc", "val_loss"), "ema": ("ema_val_acc", "ema_val_loss")}


@dataclass(frozen=True)
class BestChoice:
    score: float  # the rule's score of this epoch: higher is better
    weights: str  # "raw" or "ema"
    val_acc: float | None  # the plain val accuracy of the chosen weights at this epoch


def _measured(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def rule_score(rule: str, window: int, accs: Sequence, losses: Sequence) -> float | None:
    """The newest epoch's score from the series up to it (oldest first); None when the
    epoch was not measured (no validation split)."""
    if rule not in RULES:
        raise ValueError(f"unknown checkpoint rule {rule!r}; choose one of {', '.join(RULES)}")
    if not accs or not _measured(accs[-1]):
        return None
    if rule == "last":
        return 0.0  # every epoch ties, and ties go to the later epoch
    if rule == "val_acc":
        return float(accs[-1])
    if rule == "val_loss":
        return -float(losses[-1]) if _measured(losses[-1]) else None
    recent = [a for a in accs[-window:] if _measured(a)]
    return sum(recent) / len(recent)


def _beats(rule: str, score: float, best_score: float | None) -> bool:
    if best_score is None:
        return True
    if rule == "val_acc":
        return score > best_score  # the classic rule: the first epoch to reach a value keeps it
    return score >= best_score


def new_best(rule: str, window: int, history: Sequence[dict],
             best_score: float | None) -> BestChoice | None:
    """Given the metric rows so far (the newest last; keys as in metrics.csv), whether the
    newest epoch's weights replace best.pt, and which of raw/EMA. None: keep best.pt."""
    if not history:
        return None
    choices = []
    for weights, (acc_key, loss_key) in WEIGHTS.items():
        accs = [row.get(acc_key) for row in history]
        losses = [row.get(loss_key) for row in history]
        score = rule_score(rule, window, accs, losses)
        if score is not None:
            choices.append(BestChoice(score, weights, float(accs[-1])))
    if not choices:
        return None
    best = max(choices, key=lambda c: c.score)  # raw first: a tie keeps the raw weights
    return best if _beats(rule, best.score, best_score) else None


def pick_epoch(rule: str, window: int, history: Sequence[dict]) -> int | None:
    """The 0-based position in `history` whose weights the rule leaves in best.pt at the
    end: the online decisions of `new_best` replayed over the whole history."""
    chosen, best_score = None, None
    for i in range(len(history)):
        choice = new_best(rule, window, history[: i + 1], best_score)
        if choice is not None:
            chosen, best_score = i, choice.score
    return chosen


SCORED_COLUMNS = ("val_acc", "val_loss", "ema_val_acc", "ema_val_loss")


def advance(best: dict, row: dict, rule: str, window: int) -> tuple[dict, BestChoice | None]:
    """One epoch end: the run's best-checkpoint state (saved in last.pt, so a resumed run
    decides exactly as one never stopped) and this epoch's metrics row -> (the new state,
    the choice when this epoch's weights replace best.pt, else None)."""
    recent = [*best.get("recent", []), {k: row.get(k) for k in SCORED_COLUMNS}][-window:]
    # A score only compares with scores of the same rule: a resume that changed the rule
    # starts the choice afresh.
    best_score = best.get("score") if best.get("rule") == rule else None
    choice = new_best(rule, window, recent, best_score)
    state = {**best, "recent": recent, "rule": rule}
    if choice is not None:
        state.update(val_acc=choice.val_acc, epoch=row.get("epoch"), score=choice.score,
                     weights=choice.weights)
    return state, choice


# Above this half-width (percentage points at 50%, i.e. fewer than about 385 images) one
# epoch's val accuracy moves more from noise than a good epoch differs from its neighbours.
SMALL_SPLIT_POINTS = 5.0


def small_split_warning(val_images: int, rule: str) -> str | None:
    """One line when the val split is too small for a choice among epochs to mean much."""
    if rule == "last" or val_images <= 0:
        return None
    points = half_width_points(val_images)
    if points <= SMALL_SPLIT_POINTS:
        return None
    return (f"the val split has {val_images} images (accuracy +-{points:.1f} points, 95%): "
            f"choosing best.pt among epochs on it is mostly noise; raise data.val_fraction "
            f"(about {min_images_for(SMALL_SPLIT_POINTS)} images for +-{SMALL_SPLIT_POINTS:.0f}) or "
            f"predict with --checkpoint last")


def min_images_for(points: float) -> int:
    """The smallest split whose half-width at 50% is at most `points`."""
    n = 1
    while half_width_points(n) > points:
        n = n * 2
    low, high = n // 2, n
    while low + 1 < high:
        mid = (low + high) // 2
        low, high = (mid, high) if half_width_points(mid) > points else (low, mid)
    return high


def warn_small_selection_split(log, val_images: int, rule: str) -> None:
    """Print and record `small_split_warning` (once per run, after its first epoch)."""
    message = small_split_warning(val_images, rule)
    if message:
        print(f"lowres: warning: {message}", file=sys.stderr)
        log.event("warning", message=message)
