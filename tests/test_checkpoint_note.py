"""What predict/evaluate say about the checkpoint they use."""
from pathlib import Path

from lowres.predict.checkpoint_note import describe

BEST = {"kind": "best", "position": {"epoch": 11}, "weights": "raw",
        "config": {"train": {"checkpoint_window": 3}},
        "best": {"val_acc": 0.5, "epoch": 11, "rule": "val_loss"}}


def test_best_checkpoint_names_epoch_rule_and_interval():
    line = describe(Path("runs/r/checkpoints/best.pt"), BEST, "best", 1000)
    assert line == ("runs/r: using best.pt = epoch 11 (raw weights), chosen by the lowest val "
                    "loss; val 50.0% (46.9-53.1) on 1000 images")


def test_small_split_adds_a_note_and_old_runs_say_val_acc():
    state = {**BEST, "best": {"val_acc": 0.48, "epoch": 6}}  # before the rule was recorded
    line = describe(Path("runs/r/checkpoints/best.pt"), state, "best", 98)
    assert "chosen by the highest single-epoch val accuracy" in line
    assert "\n  note: the val split has 98 images" in line


def test_last_checkpoint_says_why():
    state = {"kind": "last", "position": {"epoch": 12}}
    assert describe(Path("runs/r/checkpoints/last.pt"), state, "last", 98) == (
        "runs/r: using last.pt = epoch 12, the newest weights (--checkpoint last)")
    assert "there is no best.pt yet" in describe(Path("runs/r/checkpoints/last.pt"), state,
                                                 "best", 98)
