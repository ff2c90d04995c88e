"""Per-image val outcomes and McNemar's test on constructed paired outcomes."""
import numpy as np
import pytest

from lowres.basics.intervals import paired_test
from lowres.run.outcomes import read_val_outcomes, record_val_outcomes
from lowres.track.paired import group_pairs, pooled, run_pairs


def outcomes(both, only_a, only_b, neither):
    """Correctness of runs A and B on the same images, with given agreement counts."""
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    return np.array(a), np.array(b)


def test_paired_test_counts_only_the_disagreements():
    a, b = outcomes(both=400, only_a=30, only_b=10, neither=560)
    r = paired_test(a, b)
    assert (r.only_a, r.only_b, r.images) == (30, 10, 1000)
    assert r.difference_points == pytest.approx(2.0)
    assert r.p_value == pytest.approx(0.002221, rel=1e-3)  # 2 * P(Binomial(40, 1/2) <= 10)
    assert r.distinguishable and "distinguishable" in r.verdict()


def test_same_accuracy_gap_with_many_disagreements_is_not_distinguishable():
    # Also +2 points on 1,000 images, but spread over 200 disagreements: noise.
    a, b = outcomes(both=300, only_a=110, only_b=90, neither=500)
    r = paired_test(a, b)
    assert r.difference_points == pytest.approx(2.0) and not r.distinguishable
    assert r.verdict().endswith("not distinguishable")


def test_paired_test_needs_the_same_images():
    with pytest.raises(ValueError, match="same images"):
        paired_test(np.ones(3, bool), np.ones(4, bool))


def write(run_dir, images, labels, last, best=None, epoch=5):
    run_dir.mkdir(parents=True, exist_ok=True)
    record_val_outcomes(run_dir, images, labels, epoch, last, best)
    return run_dir


def test_outcomes_round_trip_and_keep_best_until_it_changes(tmp_path):
    images = np.arange(13 * 3 * 4 * 4, dtype=np.uint8).reshape(13, 3, 4, 4)
    labels = np.arange(13) % 3
    first = np.arange(13) % 2 == 0
    write(tmp_path / "r", images, labels, first, best=first, epoch=1)
    write(tmp_path / "r", images, labels, ~first, best=None, epoch=2)
    o = read_val_outcomes(tmp_path / "r")
    assert o.images == 13 and o.epochs == {"best": 1, "last": 2}
    assert (o.correct["best"] == first).all() and (o.correct["last"] == ~first).all()
    assert read_val_outcomes(tmp_path / "missing") is None


def test_run_pairs_pair_only_runs_on_the_same_split(tmp_path):
    images = np.zeros((40, 3, 4, 4), np.uint8)
    labels = np.arange(40) % 4
    a, b = outcomes(both=10, only_a=12, only_b=0, neither=18)
    ra = write(tmp_path / "a", images, labels, a, best=a)
    rb = write(tmp_path / "b", images, labels, b, best=b)
    rc = write(tmp_path / "c", images + 1, labels, b)  # another split
    rows, notes = run_pairs([ra, rb, rc], ["a", "b", "c"])
    assert [r[:3] for r in rows] == [["a", "b", "best.pt"], ["a", "b", "last epoch"]]
    assert rows[0][3:6] == [12, 0, 40] and rows[0][-1] == "distinguishable"
    assert any("different val splits" in n and "a / c" in n for n in notes)


def test_groups_pool_disagreements_over_shared_splits(tmp_path):
    labels = np.arange(20) % 2
    dirs, groups = [], [[], []]
    for seed in range(3):
        images = np.full((20, 1, 2, 2), seed, np.uint8)  # one split per seed
        a, b = outcomes(both=8, only_a=3, only_b=1, neither=8)
        for g, correct in enumerate((a, b)):
            groups[g].append(len(dirs))
            dirs.append(write(tmp_path / f"g{g}s{seed}", images, labels, correct, best=correct))
    rows, lines = group_pairs(dirs, groups, ["A", "B"])
    assert rows[0][:6] == ["A", "B", "best.pt, 3 shared splits", 9, 3, 60]
    assert "3 shared val splits" in lines[0]
    result, shared = pooled([read_val_outcomes(d) for d in dirs[::2]],
                            [read_val_outcomes(d) for d in dirs[1::2]], "last")
    assert shared == 3 and (result.only_a, result.only_b) == (9, 3)
    assert result.p_value == pytest.approx(2 * sum(__import__("math").comb(12, i)
                                                   for i in range(4)) / 2 ** 12)
