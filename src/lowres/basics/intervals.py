"""How much an accuracy measured on n images can be trusted: intervals and a paired test.

Plain math (no scipy): the accuracy interval is Wilson's score interval, which keeps its
coverage near 95% for small n and for accuracies near 0 or 1, where the textbook
p +- 1.96 sqrt(p(1-p)/n) does not. Runs evaluated on the same images are compared with
McNemar's exact test, which looks only at the images where the two runs disagree.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (standard tables);
# above 30 the normal value is within 4%.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)

INTERVAL_NAME = "Wilson 95%"
ALPHA = 0.05  # a paired difference is "distinguishable" when McNemar's p is below this


def wilson_interval(correct: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (fractions) for `correct` successes out of `n`; (nan, nan) for n=0.

    `correct` may be fractional (an accuracy times n that was rounded on the way)."""
    if n <= 0:
        return math.nan, math.nan
    p = min(max(correct / n, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(acc: float | None, n: int | None) -> tuple[float, float] | None:
    """The interval of an accuracy (a fraction) measured on n images; None when unknown."""
    if acc is None or n is None or n <= 0 or math.isnan(acc):
        return None
    return wilson_interval(round(acc * n), n)


def half_width_points(n: int, p: float = 0.5) -> float:
    """Half the Wilson interval width, in percentage points, at accuracy p on n images:
    the number to size a validation split by (about 98 / sqrt(n) at p = 0.5)."""
    low, high = wilson_interval(p * n, n)
    return 100 * (high - low) / 2


def split_precision_line(n: int) -> str:
    """'val 990 images: +-3.1 points at 50% (Wilson 95%)'."""
    if n <= 0:
        return "no validation images: accuracy cannot be measured"
    return f"val {n:,} images: +-{half_width_points(n):.1f} points at 50% ({INTERVAL_NAME})"


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: `only_a` images only run A got right, `only_b` only B.

    Under "no difference" each disagreement is a fair coin, so the count of A-only wins is
    Binomial(only_a + only_b, 1/2); the p-value doubles the smaller tail (capped at 1)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclass
class PairedResult:
    only_a: int  # images only A got right
    only_b: int  # images only B got right
    images: int
    p_value: float  # McNemar's exact test, two-sided

    @property
    def distinguishable(self) -> bool:
        return self.p_value < ALPHA

    @property
    def difference_points(self) -> float:
        """A's accuracy minus B's, in percentage points."""
        return 100 * (self.only_a - self.only_b) / self.images if self.images else 0.0

    def verdict(self) -> str:
        """'+2.1 points (31 vs 10 disagreements), McNemar p=0.0016: distinguishable'."""
        word = "distinguishable" if self.distinguishable else "not distinguishable"
        return (f"{self.difference_points:+.1f} points ({self.only_a} vs {self.only_b} images "
                f"only one got right, of {self.images}), McNemar exact p={self.p_value:.2g}: {word}")


def paired_test(a_correct: np.ndarray, b_correct: np.ndarray) -> PairedResult:
    """McNemar's exact test of two runs' correctness on the same images."""
    a = np.asarray(a_correct, dtype=bool)
    b = np.asarray(b_correct, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need the same images: {a.shape} vs {b.shape}")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(b & ~a))
    return PairedResult(only_a, only_b, int(a.size), mcnemar_exact(only_a, only_b))


def mean_interval(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(mean, low, high): Student-t 95% interval of the mean over seeds; None for < 2 values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    df = len(values) - 1
    t = _T95[df - 1] if df <= len(_T95) else Z95
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def fmt_interval_pct(low: float, high: float) -> str:
    """'(45.1-52.3)': an interval given in percent, one decimal."""
    return f"({low:.1f}-{high:.1f})"


def interval_columns(acc: float | None, n: int) -> dict:
    """metrics.csv columns for an accuracy on n images: its size and Wilson bounds (fractions)."""
    bounds = accuracy_interval(acc, n)
    return {"val_images": n if n > 0 else None,
            "val_acc_low": bounds[0] if bounds else None,
            "val_acc_high": bounds[1] if bounds else None}
