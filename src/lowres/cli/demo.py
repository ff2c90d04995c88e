"""`lowres demo`: the whole flow on generated data, in a couple of minutes on a CPU.

Makes a 10-class 40x40 dataset in the competition layout, trains a small net with a short
version of the seed's 3-stage plan, writes a submission, scores it against the generated
answers (like a leaderboard), evaluates on the val split and prints where everything is.
"""
from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import yaml

from lowres.data.synthetic import make_competition_dataset, score_submission
from lowres.predict.predictions import evaluate, predict
from lowres.train.loop import train

# A short version of the seed's plan (DIGEST.md): the same augmentation per stage and a
# fresh optimizer per stage, with epochs cut down and a cosine schedule instead of plateau
# (a plateau needs more epochs than a demo has to lower the LR).


def demo_config(data_root: Path, epochs: tuple[int, int, int] = (16, 8, 1)) -> dict:
    from lowres.config import SEED_STAGE1_AUGMENT, SEED_STAGE2_AUGMENT

    cosine = {"name": "cosine", "warmup_epochs": 1}
    return {
        "seed": 0,
        "name": "demo",
        "data": {"root": str(data_root), "val_fraction": 0.1},
        "model": {"name": "resnet8", "stem": "k3", "dropout": 0.2},
        "train": {"batch_size": 64, "label_smoothing": 0.1},
        "stages": [
            {"name": "stage1", "epochs": epochs[0], "optimizer": {"lr": 0.1, "weight_decay": 5e-4},
             "scheduler": cosine, "augment": SEED_STAGE1_AUGMENT},
            {"name": "stage2", "epochs": epochs[1], "optimizer": {"lr": 0.05, "weight_decay": 5e-4},
             "scheduler": cosine, "augment": SEED_STAGE2_AUGMENT},
            {"name": "stage3", "epochs": epochs[2], "optimizer": {"lr": 0.01, "weight_decay": 5e-4},
             "scheduler": {"name": "constant"}, "augment": SEED_STAGE2_AUGMENT},
        ],
    }


def run_demo(out: str | Path = "demo", log=None, quick: bool = False) -> dict:
    """The demo; `quick` (for tests) uses 20 images per class and one epoch per stage."""
    log = log or sys.stdout
    out = Path(out)
    data_root = out / "data"
    if not (data_root / "labels.csv").exists():
        print(f"lowres demo: generating a 10-class 40x40 dataset in {data_root}", file=log)
        make_competition_dataset(data_root, classes=10, per_class=20 if quick else 250,
                                 test_per_class=5 if quick else 50)
    config_path = out / "demo.yaml"
    epochs = (1, 1, 1) if quick else (16, 8, 1)
    config_path.write_text("# The demo's config: a short version of the seed's 3-stage plan.\n"
                           + yaml.safe_dump(demo_config(data_root.resolve(), epochs), sort_keys=False))
    run_dir = out / "runs" / f"demo-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    result = train(config_path, run_dir=run_dir, out=log)
    submission = predict([run_dir], data_root, tta="flip", out=out / "submission.csv", log=log)
    score = score_submission(submission, data_root / "test_labels.csv")
    evaluation = evaluate(run_dir, log=log)
    print(f"\nlowres demo: done.\n"
          f"  data:        {data_root} (competition layout: labels.csv, trainval/, test/)\n"
          f"  config:      {config_path}\n"
          f"  run:         {run_dir} (metrics.csv, events.jsonl, checkpoints/, plots/)\n"
          f"  report:      {run_dir / 'report.html'}\n"
          f"  submission:  {submission} -> test accuracy {score:.3f} against the generated answers\n"
          f"  evaluation:  {run_dir / 'evaluation'} (val accuracy {evaluation['accuracy']:.3f})",
          file=log)
    return {"run_dir": run_dir, "submission": submission, "test_accuracy": score,
            "best_val_acc": result.best_val_acc}
