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
from lowres.data.prepare import labelled_test, prepare, select, stratified_split, test_images
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
from lowres.predict import interpret
from lowres.predict.interpret import MOST_CONFUSED, TOP_LOSSES
from lowres.predict.tta import TTA, TTA_MODES, for_run, make_views, tta_setting

__all__ = ["TTA", "TTA_MODES"]  # re-exported: the modes' home is lowres.predict.tta


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


def probabilities(loaded: Loaded, images: np.ndarray, tta: str | TTA | None = "none",
                  views=None) -> torch.Tensor:
    """[N, K] probabilities of `images` under a TTA (lowres.predict.tta; None: the default,
    "auto": this run's augmentation when it has one). `views`: a ready AugmentedViews
    (measurements keep its per-view probabilities)."""
    if tuple(images.shape[1:]) != loaded.image_shape:
        c, h, w = loaded.image_shape
        raise LowresError(f"images are {images.shape[3]}x{images.shape[2]}x{images.shape[1]} but "
                          f"{loaded.run_dir} was trained on {w}x{h}x{c}")
    setting = for_run(tta_setting(tta), loaded.cfg, loaded.run_dir)
    if views is None:
        views = make_views(setting, loaded.cfg, loaded.pipeline, loaded.engine.policy.device,
                           loaded.eval_batch, loaded.run_dir)
    mode = "none" if views is not None else setting.mode
    logits = loaded.engine.logits(loaded.engine.module, images, loaded.pipeline, loaded.eval_batch,
                                  mode, views=views)
    return logits.softmax(dim=1)


def ensemble(runs: list[Loaded], images: np.ndarray, tta: str | TTA | None) -> torch.Tensor:
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


def submission_rows(run_dirs: list[str | Path], data_root: str | Path, tta: str | TTA | None = None,
                    which: str = "best", device: str = "auto",
                    cache_dir: str | None = None, log=None) -> tuple[list[str], list[str]]:
    """(Ids, predicted class names) for the test images of `data_root`, file-name order;
    says on `log` which checkpoint of each run it uses and why, and which TTA."""
    tta = tta_setting(tta)
    runs = [load_run(r, which, device) for r in run_dirs]
    for loaded in runs:
        resolved = for_run(tta, loaded.cfg, loaded.run_dir)  # a mode a run cannot make: now
        if log is not None:
            print(f"lowres: {loaded.note}", file=log)
            print(f"lowres: tta {resolved.describe()}" + (f" for {loaded.run_dir}" if len(runs) > 1 else ""),
                  file=log)
    data_cfg = runs[0].cfg.data  # read and resized as the (first) run's training data was
    index = read_dataset(data_root, data_cfg.image_column, data_cfg.label_column)
    images, ids = test_images(index, cache_dir, data_cfg.size)
    probs = ensemble(runs, images, tta)
    names = runs[0].class_names
    return ids, [names[i] for i in probs.argmax(dim=1).tolist()]


def predict(run_dirs: list[str | Path], data_root: str | Path, tta: str | TTA | None = None,
            out: str | Path = "submission.csv", which: str = "best", device: str = "auto",
            cache_dir: str | None = None, log=None) -> Path:
    log = log or sys.stdout
    ids, labels = submission_rows(run_dirs, data_root, tta, which, device, cache_dir, log)
    out = Path(out)
    write_submission(out, ids, labels)
    print(f"lowres: wrote {out} ({len(ids)} rows; {len(run_dirs)} model(s), "
          f"tta={tta_setting(tta).mode})", file=log)
    return out


@dataclass
class Labelled:
    """Labelled images to score a run on, and where they came from."""

    images: np.ndarray  # uint8 [N, C, H, W]
    labels: np.ndarray  # int64 [N]
    names: list[str] | None  # each image's file (or id) where known
    source: str


def labelled_images(loaded: Loaded, data: str | Path | None = None) -> Labelled:
    """The run's labelled test split (test/<class>/ folders, a labelled test table), else its
    val split; or the labelled data at `data`."""
    data_cfg = loaded.cfg.data
    if data is None:
        prepared = prepare(data_cfg, loaded.cfg.seed)
        test = labelled_test(prepared.index, data_cfg.cache_dir, data_cfg.size, data_cfg.classes)
        if test is not None:
            images, labels = test
            split = prepared.index.test
            keep = select(np.asarray(split.labels, dtype=np.int64), data_cfg.classes, None)
            return Labelled(images, labels, _names(split, keep, prepared.index.root),
                            "the dataset's labelled test split")
        if len(prepared.val_labels) == 0:
            raise LowresError(f"{loaded.run_dir} has no validation split (data.val_fraction=0): pass "
                              f"--data with a labelled folder")
        return Labelled(prepared.val_images, prepared.val_labels,
                        _val_names(prepared, data_cfg, loaded.cfg.seed), "the run's val split")
    split = read_labelled_folder(data, loaded.class_names, data_cfg.image_column,
                                 data_cfg.label_column)
    images = np.asarray(cached_images(split, data_cfg.cache_dir, "decoding", size=data_cfg.size))
    return Labelled(images, np.asarray(split.labels), _names(split, None, data), str(data))


def _names(split, keep, root) -> list[str] | None:
    """File names (relative to `root` where possible) or ids of `split`, `keep` indices."""
    if split.ids:
        names = [str(i) for i in split.ids]
    elif split.paths:
        names = []
        for p in split.paths:
            try:
                names.append(Path(p).relative_to(root).as_posix())
            except ValueError:
                names.append(Path(p).name)
    else:
        return None
    return names if keep is None else [names[i] for i in keep]


def _val_names(prepared, data_cfg, seed: int) -> list[str] | None:
    """The val images' names, by the same selection and split as data.prepare (None where
    they cannot be told, or when the count disagrees)."""
    try:
        if data_cfg.val_dir:
            split = read_labelled_folder(data_cfg.val_dir, prepared.class_names,
                                         data_cfg.image_column, data_cfg.label_column)
            root = data_cfg.val_dir
        elif prepared.index.val is not None and len(prepared.index.val):
            split, root = prepared.index.val, prepared.index.root
        else:
            split, root = prepared.index.labelled, prepared.index.root
            labels = np.asarray(split.labels, dtype=np.int64)
            keep = select(labels, data_cfg.classes, data_cfg.per_class)
            _, va = stratified_split(labels[keep], data_cfg.val_fraction, seed)
            names = _names(split, keep[va], root)
            return names if names is not None and len(names) == len(prepared.val_labels) else None
        keep = select(np.asarray(split.labels, dtype=np.int64), data_cfg.classes, None)
        names = _names(split, keep, root)
        return names if names is not None and len(names) == len(prepared.val_labels) else None
    except Exception:  # noqa: BLE001 (names are a convenience; the scores do not need them)
        return None


def evaluate(run_dir: str | Path, data: str | Path | None = None, which: str = "best",
             tta: str | TTA | None = None, device: str = "auto", out_dir: str | Path | None = None,
             log=None, top_losses: int = TOP_LOSSES, most_confused: int = MOST_CONFUSED) -> dict:
    """Accuracy, per-class accuracy, a confusion matrix, the most confused class pairs and
    the top losses on the run's labelled test split (test/<class>/ folders, a labelled test
    table) or else its val split, or on labelled data; writes evaluation.json, a
    confusion-matrix PNG and a top-losses grid PNG, and refreshes the run's report.html."""
    log = log or sys.stdout
    loaded = load_run(run_dir, which, device)
    print(f"lowres: {loaded.note}", file=log)
    setting = for_run(tta_setting(tta), loaded.cfg, loaded.run_dir)
    found = labelled_images(loaded, data)
    images, labels, source = found.images, found.labels, found.source
    probs = probabilities(loaded, images, setting)
    predicted = probs.argmax(dim=1).numpy()
    from lowres.predict.confusion import summarize, write_confusion_plot

    result = summarize(labels, predicted, loaded.class_names)
    confused = interpret.most_confused(labels, predicted, loaded.class_names, most_confused)
    losses = interpret.top_losses(probs.numpy(), labels, loaded.class_names, found.names, top_losses)
    result.update(source=source, images=int(len(labels)), tta=setting.mode, checkpoint=which,
                  checkpoint_used=loaded.note, most_confused=confused, top_losses=losses)
    if setting.augments:
        result.update(tta_views=setting.views, tta_beta=setting.beta, tta_seed=setting.seed)
    if out_dir is None:
        from lowres.run.copies import output_path

        out_dir, note = output_path(Path(run_dir), Path(run_dir) / "evaluation")
        if note:
            print(f"lowres: note: {note}", file=log)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = write_confusion_plot(labels, predicted, loaded.class_names, out_dir / "confusion.png")
    grid = interpret.write_top_losses_grid(images, losses, out_dir / interpret.GRID_FILE)
    import json

    replace_text(out_dir / "evaluation.json", json.dumps(result, indent=1) + "\n")
    low, high = wilson_interval(int(round(result["accuracy"] * len(labels))), len(labels))
    print(f"lowres: {source}: accuracy {result['accuracy']:.4f} [{low:.4f}-{high:.4f}, "
          f"Wilson 95%] on {len(labels)} images", file=log)
    worst = sorted(result["per_class"].items(), key=lambda kv: kv[1]["accuracy"])[:5]
    print("  weakest classes: " + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in worst), file=log)
    print(interpret.format_most_confused(confused), file=log)
    print(f"  tta: {setting.describe()}", file=log)
    print(f"  confusion matrix: {plot}\n  top losses: {grid}\n  details: {out_dir / 'evaluation.json'}",
          file=log)
    if out_dir.resolve() == (Path(run_dir) / "evaluation").resolve():
        from lowres.track.report import write_run_report

        write_run_report(run_dir)  # shows the evaluation (never raises: a report is a bonus)
    return result


def interpretation(run_dir: str | Path, data: str | Path | None = None, tta: str | TTA | None = None,
                   which: str = "best", device: str = "auto", tta_views: int | None = None,
                   tta_beta: float | None = None) -> interpret.Interpretation:
    """A run's predictions on its labelled images (as `evaluate` picks them), to ask what
    went wrong: lowres.predict.interpret.Interpretation."""
    loaded = load_run(run_dir, which, device)
    setting = for_run(tta_setting(tta, tta_views, tta_beta), loaded.cfg, loaded.run_dir)
    found = labelled_images(loaded, data)
    probs = probabilities(loaded, found.images, setting).numpy()
    return interpret.Interpretation(probs, found.labels, loaded.class_names, found.images,
                                    found.names, found.source, setting.describe())
