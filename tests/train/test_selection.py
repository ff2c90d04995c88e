"""The best.pt rule on constructed metric histories."""
import pytest

from lowres.train.selection import (advance, min_images_for, new_best, pick_epoch, rule_score,
                                    small_split_warning)


def rows(accs, losses=None, ema=None):
    losses = losses or [1.0] * len(accs)
    out = []
    for i, (acc, loss) in enumerate(zip(accs, losses)):
        row = {"epoch": i + 1, "val_acc": acc, "val_loss": loss}
        if ema is not None:
            row["ema_val_acc"], row["ema_val_loss"] = ema[i], 1.0
        out.append(row)
    return out


# A lucky spike at epoch 4 on a small split, then a plateau that is better on average.
SPIKY = [0.30, 0.38, 0.40, 0.50, 0.40, 0.42, 0.45, 0.46, 0.46]


def test_highest_single_epoch_takes_the_lucky_spike():
    assert pick_epoch("val_acc", 3, rows(SPIKY)) == 3


def test_smoothed_accuracy_ignores_one_lucky_epoch():
    # trailing 3-epoch means: 0.427 (epoch 4), 0.433, 0.440 (epoch 6, still holding the
    # spike), 0.423, 0.443, 0.457 (epoch 9): the last epoch wins
    assert pick_epoch("smoothed_acc", 3, rows(SPIKY)) == 8


def test_ties_go_to_the_later_epoch_except_for_the_classic_rule():
    flat = [0.5, 0.5, 0.5, 0.5]
    assert pick_epoch("smoothed_acc", 2, rows(flat)) == 3
    assert pick_epoch("val_acc", 2, rows(flat)) == 0


def test_val_loss_and_last():
    history = rows([0.4, 0.5, 0.45], losses=[2.0, 1.5, 1.7])
    assert pick_epoch("val_loss", 3, history) == 1
    assert pick_epoch("last", 3, history) == 2


def test_ema_weights_compete_and_win_when_better():
    history = rows([0.40, 0.41], ema=[0.39, 0.45])
    choice = new_best("val_acc", 1, history, best_score=None)
    assert choice.weights == "ema" and choice.val_acc == 0.45


def test_no_validation_split_gives_no_choice():
    history = [{"epoch": 1, "val_acc": None, "val_loss": None}]
    assert new_best("smoothed_acc", 3, history, None) is None
    assert rule_score("val_acc", 3, [float("nan")], [float("nan")]) is None


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError, match="unknown checkpoint rule"):
        rule_score("best", 3, [0.5], [1.0])


def test_advance_keeps_a_window_and_matches_pick_epoch():
    state = {"val_acc": None, "epoch": None}
    chosen = None
    for row in rows(SPIKY):
        state, choice = advance(state, row, "smoothed_acc", 3)
        assert len(state["recent"]) <= 3
        if choice is not None:
            chosen = row["epoch"]
    assert chosen == pick_epoch("smoothed_acc", 3, rows(SPIKY)) + 1
    assert state["epoch"] == chosen and state["val_acc"] == SPIKY[-1]


def test_advance_restarts_when_the_rule_changes():
    state, _ = advance({}, rows([0.9])[0], "val_acc", 3)
    state, choice = advance(state, {**rows([0.9, 0.2])[1]}, "last", 3)
    assert choice is not None and state["epoch"] == 2 and state["rule"] == "last"


def test_small_split_warning():
    assert small_split_warning(98, "smoothed_acc").startswith("the val split has 98 images")
    assert small_split_warning(98, "last") is None
    assert small_split_warning(1000, "val_acc") is None
    assert min_images_for(5.0) in range(370, 400)
