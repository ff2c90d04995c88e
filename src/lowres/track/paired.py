"""Paired comparisons for `lowres compare`: McNemar's exact test on the same val images.

Runs that share a val split (same data, data.val_fraction and seed: the split fingerprint in
val_outcomes.json matches) are compared image by image at best.pt and at the last epoch.
Seed groups are compared over the splits they share (the same seed in both groups): the
disagreements of all shared splits are pooled into one exact test, which stays valid
because under "no difference" every disagreement is a fair coin whichever split it is on.
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Sequence

from lowres.basics.intervals import ALPHA, PairedResult, mcnemar_exact, paired_test
from lowres.run.outcomes import ValOutcomes, read_val_outcomes

MAX_PAIRS = 45  # beyond this (10 runs), each run is paired with the first run only

RULE = (f"paired test: McNemar's exact test (two-sided) on the val images both runs were "
        f"scored on, counting the images only one of them got right; 'distinguishable' means "
        f"p < {ALPHA}. Runs on different val splits (another seed, data or val_fraction) "
        f"cannot be paired: compare their Wilson 95% intervals instead")

WEIGHTS = {"best": "best.pt", "last": "last epoch"}  # what each record of outcomes scores

HEADER = ["A", "B", "weights", "A-only right", "B-only right", "images", "A - B (points)",
          "McNemar p", "verdict"]


def _row(a: str, b: str, weights: str, r: PairedResult) -> list:
    return [a, b, weights, r.only_a, r.only_b, r.images, f"{r.difference_points:+.1f}",
            f"{r.p_value:.2g}", "distinguishable" if r.distinguishable else "not distinguishable"]


def _pairs(n: int) -> list[tuple[int, int]]:
    pairs = list(combinations(range(n), 2))
    return pairs if len(pairs) <= MAX_PAIRS else [(0, j) for j in range(1, n)]


def run_pairs(run_dirs: Sequence[Path], labels: Sequence[str]) -> tuple[list[list], list[str]]:
    """(table rows, notes) for every pair of runs; runs on different splits get a note."""
    outcomes = [read_val_outcomes(d) for d in run_dirs]
    rows, unpaired = [], []
    for i, j in _pairs(len(run_dirs)):
        a, b = outcomes[i], outcomes[j]
        if a is None or b is None:
            continue
        if a.split != b.split:
            unpaired.append(f"{labels[i]} / {labels[j]}")
        for weights, label in WEIGHTS.items():
            found = pooled([a], [b], weights)  # two runs: one split, if shared
            if found is not None:
                rows.append(_row(labels[i], labels[j], label, found[0]))
    notes = []
    missing = [lab for lab, o in zip(labels, outcomes) if o is None]
    if missing:
        notes.append("no per-image val outcomes (run from an older lowres, or no val split): "
                     + ", ".join(missing))
    if unpaired:
        notes.append("different val splits, not paired: " + "; ".join(unpaired))
    return rows, notes


def pooled(a_runs: Sequence[ValOutcomes | None], b_runs: Sequence[ValOutcomes | None],
           weights: str) -> tuple[PairedResult, int] | None:
    """McNemar over every split the two groups share, disagreements pooled; (result, splits)."""
    b_by_split = {o.split: o for o in b_runs if o is not None and weights in o.correct}
    only_a = only_b = images = shared = 0
    for a in a_runs:
        b = b_by_split.get(a.split) if a is not None and weights in a.correct else None
        if b is None:
            continue
        r = paired_test(a.correct[weights], b.correct[weights])
        only_a, only_b, images, shared = (only_a + r.only_a, only_b + r.only_b,
                                          images + r.images, shared + 1)
    if not shared:
        return None
    return PairedResult(only_a, only_b, images, mcnemar_exact(only_a, only_b)), shared


def group_pairs(run_dirs: Sequence[Path], groups: Sequence[Sequence[int]],
                names: Sequence[str]) -> tuple[list[list], list[str]]:
    """(table rows, verdict lines) for every pair of seed groups, pooled over shared splits."""
    outcomes = [read_val_outcomes(d) for d in run_dirs]
    rows, lines = [], []
    for g, h in combinations(range(len(groups)), 2):
        a_runs = [outcomes[i] for i in groups[g]]
        b_runs = [outcomes[i] for i in groups[h]]
        for weights, label in WEIGHTS.items():
            found = pooled(a_runs, b_runs, weights)
            if found is None:
                continue
            result, shared = found
            plural = "s" if shared != 1 else ""
            rows.append(_row(names[g], names[h], f"{label}, {shared} shared split{plural}", result))
            lines.append(f"{names[g]} vs {names[h]} ({label}, {shared} shared val split{plural}): "
                         f"{result.verdict()}")
        if not any(r[0] == names[g] and r[1] == names[h] for r in rows):
            lines.append(f"{names[g]} vs {names[h]}: no shared val split (give both groups "
                         f"the same seeds to pair them)")
    return rows, lines
