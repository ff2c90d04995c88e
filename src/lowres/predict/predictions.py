"""Checkpoints -> probabilities (TTA, ensembles) -> a submission CSV; and evaluation."""
from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lowres import config as config_mod
from lowres.augment import build_pipeline
from lowres.data.prepare import labelled_test, prepare, test_images
from lowres.data.read import read_dataset, read_labelled_folder
from lowres.data.cache import cached_images
from lowres.predict.checkpoint_note import describe as describe_checkpoint
from lowres.errors import LowresError
from lowres.basics.intervals import wilson_interval
from lowres.models import build_model
from lowres.run.read import load_run as load_run_data
from lowres.basics.disk import replace_text
from lowres.run import checkpoint
from lowres.train.device import resolve
from lowres.train.engine import Engine

TTA_MODES = ("none", "flip")


@dataclass
class Loaded:
    """A trained model ready to predict, with what it was trained on."""

    run_dir: Path
    engine: Engine
    pipeline: object
    class_names: list[str]
    image_shape: tuple[int, int, int]
    cfg: config_mod.Config
    eval_batch: int
    note: str = ""  # which checkpoint and why (lowres.predict.checkpoint_note)


def load_run(run_dir: str | Path, which: str = "best", device: str = "auto") -> Loaded:
    path = checkpoint.find(run_dir, which)
    state = checkpoint.load(path)
    cfg = config_mod.build(state["config"], require_root=False)
    # The machine predicting is not the one that trained: "auto" means this machine's
    # best device, never the device saved in the run's config.
    cfg.train.device = device
    cfg.train.compile = "no"  # one pass over the test set does not repay compilation
    cfg.train.precision = "auto"  # e.g. fp16 saved from a GPU run is refused on a CPU
    meta = state["data"]
    policy = resolve(cfg.train, cfg.data)
    c, h, _ = meta["image_shape"]
    model = build_model(cfg.model, len(meta["class_names"]), in_channels=c, image_size=h)
    model.load_state_dict(state["model"])
    engine = Engine(model, policy, cfg.train.label_smoothing)
    pipeline = build_pipeline([], meta["mean"], meta["std"], len(meta["class_names"]))
    note = describe_checkpoint(path, state, which, load_run_data(run_dir).val_images)
    return Loaded(Path(run_dir), engine, pipeline, list(meta["class_names"]), tuple(meta["image_shape"]),
                  cfg, cfg.train.eval_batch_size, note)


def probabilities(loaded: Loaded, images: np.ndarray, tta: str) -> torch.Tensor:
    if tuple(images.shape[1:]) != loaded.image_shape:
        c, h, w = loaded.image_shape
        raise LowresError(f"images are {images.shape[3]}x{images.shape[2]}x{images.shape[1]} but "
                          f"{loaded.run_dir} was trained on {w}x{h}x{c}")
    logits = loaded.engine.logits(loaded.engine.module, images, loaded.pipeline, loaded.eval_batch, tta)
    return logits.softmax(dim=1)


def ensemble(runs: list[Loaded], images: np.ndarray, tta: str) -> torch.Tensor:
    """Averaged probabilities of several runs (they must share their classes)."""
    names = runs[0].class_names
    for other in runs[1:]:
        if other.class_names != names:
            raise LowresError(f"{other.run_dir} was trained on other classes than "
                              f"{runs[0].run_dir}: an ensemble needs the same classes")
    total = None
    for loaded in runs:
        probs = probabilities(loaded, images, tta)
        total = probs if total is None else total + probs
    return total / len(runs)


def write_submission(path: Path, ids: list[str], labels: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Id", "Category"])
    writer.writerows(zip(ids, labels))
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_text(path, buf.getvalue())


def submission_rows(run_dirs: list[str | Path], data_root: str | Path, tta: str = "none",
                    which: str = "best", device: str = "auto",
                    cache_dir: str | None = None, log=None) -> tuple[list[str], list[str]]:
    """(Ids, predicted class names) for the test images of `data_root`, file-name order;
    says on `log` which checkpoint of each run it uses and why."""
    if tta not in TTA_MODES:
        raise LowresError(f"--tta {tta!r} is not one of {', '.join(TTA_MODES)}")
    runs = [load_run(r, which, device) for r in run_dirs]
    for loaded in runs:
        if log is not None:
            print(f"lowres: {loaded.note}", file=log)
    data_cfg = runs[0].cfg.data  # read and resized as the (first) run's training data was
    index = read_dataset(data_root, data_cfg.image_column, data_cfg.label_column)
    images, ids = test_images(index, cache_dir, data_cfg.size)
    probs = ensemble(runs, images, tta)
    names = runs[0].class_names
    return ids, [names[i] for i in probs.argmax(dim=1).tolist()]


def predict(run_dirs: list[str | Path], data_root: str | Path, tta: str = "none",
            out: str | Path = "submission.csv", which: str = "best", device: str = "auto",
            cache_dir: str | None = None, log=None) -> Path:
    log = log or sys.stdout
    ids, labels = submission_rows(run_dirs, data_root, tta, which, device, cache_dir, log)
    out = Path(out)
    write_submission(out, ids, labels)
    print(f"lowres: wrote {out} ({len(ids)} rows; {len(run_dirs)} model(s), tta={tta})", file=log)
    return out


def evaluate(run_dir: str | Path, data: str | Path | None = None, which: str = "best",
             tta: str = "none", device: str = "auto", out_dir: str | Path | None = None,
             log=None) -> dict:
    """Accuracy, per-class accuracy and a confusion matrix on the run's labelled test split
    (test/<class>/ folders, a labelled test table) or else its val split, or on labelled
    data; writes evaluation.json and a confusion-matrix PNG."""
    log = log or sys.stdout
    loaded = load_run(run_dir, which, device)
    data_cfg = loaded.cfg.data
    print(f"lowres: {loaded.note}", file=log)
    if data is None:
        prepared = prepare(data_cfg, loaded.cfg.seed)
        test = labelled_test(prepared.index, data_cfg.cache_dir, data_cfg.size, data_cfg.classes)
        if test is not None:
            images, labels = test
            source = "the dataset's labelled test split"
        else:
            images, labels, source = prepared.val_images, prepared.val_labels, "the run's val split"
        if len(labels) == 0:
            raise LowresError(f"{run_dir} has no validation split (data.val_fraction=0): pass "
                              f"--data with a labelled folder")
    else:
        split = read_labelled_folder(data, loaded.class_names, data_cfg.image_column,
                                     data_cfg.label_column)
        images = np.asarray(cached_images(split, data_cfg.cache_dir, "decoding", size=data_cfg.size))
        labels, source = np.asarray(split.labels), str(data)
    probs = probabilities(loaded, images, tta)
    predicted = probs.argmax(dim=1).numpy()
    from lowres.predict.confusion import summarize, write_confusion_plot

    result = summarize(labels, predicted, loaded.class_names)
    result.update(source=source, images=int(len(labels)), tta=tta, checkpoint=which,
                  checkpoint_used=loaded.note)
    if out_dir is None:
        from lowres.run.copies import output_path

        out_dir, note = output_path(Path(run_dir), Path(run_dir) / "evaluation")
        if note:
            print(f"lowres: note: {note}", file=log)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = write_confusion_plot(labels, predicted, loaded.class_names, out_dir / "confusion.png")
    import json

    replace_text(out_dir / "evaluation.json", json.dumps(result, indent=1) + "\n")
    low, high = wilson_interval(int(round(result["accuracy"] * len(labels))), len(labels))
    print(f"lowres: {source}: accuracy {result['accuracy']:.4f} [{low:.4f}-{high:.4f}, "
          f"Wilson 95%] on {len(labels)} images", file=log)
    worst = sorted(result["per_class"].items(), key=lambda kv: kv[1]["accuracy"])[:5]
    print("  weakest classes: " + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in worst), file=log)
    print(f"  confusion matrix: {plot}\n  details: {out_dir / 'evaluation.json'}", file=log)
    return result
