"""Intervals and the paired test against values computed by hand or from standard tables."""
import math

import pytest

from lowres.basics.intervals import (accuracy_interval, half_width_points, mcnemar_exact, mean_interval,
                              split_precision_line, wilson_interval)


@pytest.mark.parametrize("k, n, low, high", [
    (50, 100, 0.40383, 0.59617),  # Wilson 1927 score interval, z = 1.96
    (0, 10, 0.0, 0.27753),
    (10, 10, 0.72247, 1.0),
    (1, 98, 0.00180, 0.05556),
    (47, 98, 0.38333, 0.57740),  # worked by hand: centre 0.48037, half-width 0.09703
])
def test_wilson_interval_matches_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_interval_size_for_a_split():
    # The numbers: 1,000 images give about +-3.1 points at 50%, 98 images about +-9.7.
    assert half_width_points(1000) == pytest.approx(3.09, abs=0.01)
    assert half_width_points(98) == pytest.approx(9.72, abs=0.05)
    assert split_precision_line(990) == "val 990 images: +-3.1 points at 50% (Wilson 95%)"
    assert accuracy_interval(None, 100) is None and accuracy_interval(0.5, 0) is None
    assert accuracy_interval(0.5, 100) == wilson_interval(50, 100)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


@pytest.mark.parametrize("only_a, only_b, p", [
    (0, 0, 1.0),
    (1, 9, 2 * (1 + 10) / 1024),  # two-sided binomial tail, n = 10
    (9, 1, 2 * (1 + 10) / 1024),  # symmetric
    (5, 5, 1.0),  # capped at 1
    (0, 6, 2 / 64),
    (3, 12, 2 * (1 + 15 + 105 + 455) / 2 ** 15),
])
def test_mcnemar_exact_p_values(only_a, only_b, p):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(p, rel=1e-12)


def test_mcnemar_handles_large_counts():
    assert mcnemar_exact(600, 400) < 1e-9
    assert mcnemar_exact(500, 501) == pytest.approx(1.0)


def test_mean_interval_uses_student_t():
    mean, low, high = mean_interval([30.0, 32.0, 34.0])
    # sd 2, n 3, t(2) = 4.303: 32 +- 4.303 * 2 / sqrt(3)
    assert mean == 32.0
    assert high - mean == pytest.approx(4.303 * 2 / math.sqrt(3), rel=1e-6)
    assert mean - low == pytest.approx(high - mean)
    assert mean_interval([31.0]) is None
