"""The Python API for notebooks: the CLI's operations as functions, results as objects.

    import lowres
    run = lowres.train("configs/seed/final.yaml", "data.root=DATA", "stages.0.epochs=3")
    run.metrics            # pandas DataFrame, one row per epoch
    run.plot()             # loss, accuracy and LR curves (inline in Jupyter)
    lowres.predict([run], "DATA", tta="flip")          # the submission as a DataFrame

Same configs, overrides, run directories and errors as the CLI: a bad input raises the
CLI's one-line `LowresError` (never SystemExit). Stopping a notebook cell (the stop button
sends SIGINT, as Ctrl-C does) saves a checkpoint after the current step and prints the
`lowres.resume(...)` call that continues the run.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml

from lowres.errors import LowresError

RunLike = "str | Path | TrainedRun"


def _pandas():
    try:
        import pandas
    except ImportError:
        raise LowresError("DataFrames need pandas: pip install 'lowres[notebook]'") from None
    return pandas


class TrainedRun:
    """A run directory, read on demand (a running run shows its latest epoch)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        if not (self.dir / "config.yaml").is_file():
            raise LowresError(f"{self.dir} is not a lowres run directory (no config.yaml); pass "
                              f"a directory that lowres.train created")

    def __repr__(self) -> str:
        best = self.best
        acc = ("" if best["val_acc"] is None
               else f", best val acc {best['val_acc']:.4f} (epoch {best['epoch']})")
        return f"TrainedRun('{self.dir}', {self.state}{acc})"

    def _data(self):
        from lowres.run.read import load_run as read_run_dir

        return read_run_dir(self.dir)

    @property
    def metrics(self):
        """metrics.csv as a pandas DataFrame (one row per epoch over all stages)."""
        pd = _pandas()
        path = self.dir / "metrics.csv"
        return pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame()

    @property
    def events(self) -> list[dict[str, Any]]:
        from lowres.run.log import read_events

        return read_events(self.dir)

    @property
    def config(self) -> dict[str, Any]:
        return yaml.safe_load((self.dir / "config.yaml").read_text())

    @property
    def status(self) -> dict[str, Any]:
        from lowres.run.log import read_status

        return read_status(self.dir)

    @property
    def state(self) -> str:
        return self._data().state

    @property
    def best(self) -> dict[str, Any]:
        """{'val_acc': best validation accuracy (0..1) or None, 'epoch': its epoch or None}."""
        acc, epoch = self._data().best("val_acc")
        return {"val_acc": acc, "epoch": epoch}

    def model(self, checkpoint: str = "best"):
        """The trained network, eval mode on the CPU, ready for inference: uint8 images
        [N, C, H, W] in, class probabilities out (normalisation inside); `.class_names`."""
        from lowres.predict.inference import load_probability_model

        return load_probability_model(self.dir, checkpoint)[0]

    def plot(self):
        """Loss, accuracy and learning-rate curves in one matplotlib Figure; shown inline in
        Jupyter."""
        from lowres.track.plots import curves_figure, shown_inline

        fig = curves_figure(self._data())
        return shown_inline(fig)

    def predict(self, data: str | Path, **kwargs):
        """`lowres.predict([this run], data, ...)`."""
        return predict([self], data, **kwargs)

    def evaluate(self, data: str | Path | None = None, **kwargs) -> dict:
        """`lowres.evaluate(this run, data, ...)`."""
        return evaluate(self, data, **kwargs)

    def interpretation(self, data: str | Path | None = None, tta: str | None = "auto",
                       checkpoint: str = "best", device: str = "auto", **tta_options):
        """What the model gets wrong on its val split (or labelled test split, or labelled
        `data`), as fastai's ClassificationInterpretation: `.top_losses(n)`,
        `.most_confused(n)` (DataFrames), `.plot_top_losses(n)` (a grid, inline in Jupyter).
        Predicts once; `tta` and `tta_views=` / `tta_beta=` as for `predict`."""
        from lowres.predict.predictions import interpretation

        return interpretation(self.dir, data, tta, checkpoint, device, **tta_options)

    def top_losses(self, n: int = 16, data: str | Path | None = None, tta: str | None = "auto", **kwargs):
        """The `n` labelled images with the highest loss, highest first, as a DataFrame
        (index, file, true, predicted, probability, loss); see `interpretation`."""
        return self.interpretation(data, tta, **kwargs).top_losses(n)

    def most_confused(self, n: int = 10, data: str | Path | None = None, tta: str | None = "auto",
                      **kwargs):
        """The `n` most frequent (true, predicted) errors as a DataFrame (true, predicted,
        count); see `interpretation`."""
        return self.interpretation(data, tta, **kwargs).most_confused(n)


def load_run(run_dir: str | Path) -> TrainedRun:
    """A run directory, running or not and of any age, as a `TrainedRun`: its metrics,
    events, config, status, best epoch, model and plots."""
    return TrainedRun(run_dir)


def _run_dir(run) -> Path:
    return run.dir if isinstance(run, TrainedRun) else Path(run)


def _duration(value: float | str | None) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    from lowres.basics.durations import parse_duration

    return parse_duration(value)


def train(config: str | Path | dict, *overrides: str, run_dir: str | Path | None = None,
          time_limit: float | str | None = None, pause_after: int | None = None,
          dry_run: bool = False, devices: int | None = None,
          budget: float | str | None = None) -> TrainedRun | None:
    """`lowres train CONFIG key=value ...`: `config` is a YAML path or a dict of the same
    keys; `time_limit` is seconds or a duration such as '11h30m' (the session stops there,
    resumable); `budget` (seconds or '5m', `--budget`) scales the plan's epochs so the whole
    plan fits it; `devices=N` trains on N GPUs (N processes, started here: `--devices`).
    Returns the run (None for a dry run). An interrupted run returns stopped and resumable
    with `lowres.resume`."""
    from lowres import config as config_mod
    from lowres.train import loop

    overrides = [str(o) for o in overrides] + ([f"train.budget={budget}"] if budget else [])
    with tempfile.TemporaryDirectory(prefix="lowres-config-") as tmp:
        if isinstance(config, dict):
            path = Path(tmp) / f"{config.get('name') or 'run'}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            config = path
        if run_dir is None and not dry_run:  # known up front, to name it if interrupted
            run_dir = loop.default_run_dir(config_mod.load(config, overrides), config)
        if devices not in (None, 1) and not dry_run:
            return _train_guarded(lambda: _on_devices(devices, config, overrides, run_dir=run_dir,
                                                      time_limit=_duration(time_limit),
                                                      pause_after_epochs=pause_after), run_dir)
        return _train_guarded(lambda: loop.train(
            config, overrides, run_dir=run_dir, time_limit=_duration(time_limit),
            pause_after_epochs=pause_after, dry_run=dry_run, out=sys.stdout), run_dir)


def resume(run: str | Path | TrainedRun, *overrides: str, time_limit: float | str | None = None,
           pause_after: int | None = None, run_dir: str | Path | None = None,
           devices: int | None = None) -> TrainedRun:
    """`lowres train --resume RUN key=value ...`: continue exactly where it stopped.
    `run_dir`: continue a copy of the run there instead (`--run-dir`; a read-only RUN, such
    as a Kaggle input folder, needs one); `devices=N`: on N GPUs (any count, not only the
    one it started with)."""
    from lowres.train import loop

    source = _run_dir(run)
    if devices not in (None, 1):
        return _train_guarded(lambda: _on_devices(
            devices, None, [str(o) for o in overrides], run_dir=run_dir, resume=source,
            time_limit=_duration(time_limit), pause_after_epochs=pause_after), run_dir or source)
    return _train_guarded(lambda: loop.train(
        None, [str(o) for o in overrides], resume=source, run_dir=run_dir,
        time_limit=_duration(time_limit), pause_after_epochs=pause_after, out=sys.stdout),
        run_dir or source)


def _on_devices(devices: int, config, overrides, **kwargs):
    """launch.train_on_devices, answered as loop.train answers (a RunResult-like object)."""
    from types import SimpleNamespace

    from lowres.train.launch import train_on_devices

    state, run_dir = train_on_devices(devices, config, overrides, **kwargs)
    if state is None:
        return None
    return SimpleNamespace(state="stopped" if state.startswith("stopped") else state, run_dir=run_dir)


def _train_guarded(start, run_dir) -> TrainedRun | None:
    try:
        result = start()
    except KeyboardInterrupt:
        # A second interrupt (or one before training began) stops at once; the last
        # end-of-epoch checkpoint, if any, still resumes.
        if run_dir is not None and (Path(run_dir) / "checkpoints" / "last.pt").is_file():
            print(f'lowres: interrupted; continue from the last saved epoch with '
                  f'lowres.resume("{run_dir}")', file=sys.stdout, flush=True)
        raise
    if result is None:
        return None
    if result.state == "stopped":
        print(f'  from Python: lowres.resume("{result.run_dir}")', file=sys.stdout, flush=True)
    return TrainedRun(result.run_dir)


def predict(runs: RunLike | Iterable[RunLike], data: str | Path, tta: str = "auto",
            out: str | Path | None = None, checkpoint: str = "best", device: str = "auto",
            cache_dir: str | None = None, tta_views: int | None = None,
            tta_beta: float | None = None):
    """`lowres predict RUN ... --data DATA`: the submission (Id, Category) as a pandas
    DataFrame, in file-name order; also written as CSV when `out` is given. Several runs
    form an ensemble. `tta`: "auto" (aug when the run's last stage augments, else none),
    "aug" (`tta_views` draws of the run's last-stage augmentation blended with the plain
    image, `tta_beta` its weight), "aug+flip", "flip" or "none" (README, Predict)."""
    from lowres.predict.predictions import submission_rows, write_submission
    from lowres.predict.tta import tta_setting

    tta = tta_setting(tta, tta_views, tta_beta)

    pd = _pandas()
    if isinstance(runs, (str, Path, TrainedRun)):
        runs = [runs]
    run_dirs = [_run_dir(r) for r in runs]
    ids, labels = submission_rows(run_dirs, data, tta, checkpoint, device, cache_dir)
    if out is not None:
        write_submission(Path(out), ids, labels)
        print(f"lowres: wrote {out} ({len(ids)} rows; {len(run_dirs)} model(s), tta={tta.mode})")
    return pd.DataFrame({"Id": ids, "Category": labels})


def evaluate(run: RunLike, data: str | Path | None = None, tta: str = "auto",
             checkpoint: str = "best", device: str = "auto", out_dir: str | Path | None = None,
             tta_views: int | None = None, tta_beta: float | None = None) -> dict:
    """`lowres evaluate RUN [--data DIR]`: accuracy, per-class accuracy, confusion matrix,
    most confused pairs, top losses (written to RUN/evaluation/); returns the evaluation as
    a dict. `tta` as for `predict`."""
    from lowres.predict.predictions import evaluate as evaluate_run
    from lowres.predict.tta import tta_setting

    return evaluate_run(_run_dir(run), data, which=checkpoint,
                        tta=tta_setting(tta, tta_views, tta_beta), device=device, out_dir=out_dir)


def tune(config: str | Path, space: str | Path, trials: int, *overrides: str,
         out: str | Path = "sweeps/search", storage: str | None = None,
         study_name: str | None = None, pruner: str = "asha", parallel: int = 1,
         per_gpu: int = 1, seed: int | None = None, ray: str | bool | None = None,
         grace_epochs: int | None = None):
    """Run (or resume, or join) an Optuna search; see `lowres tune --help`. `ray`: True (the
    local Ray cluster, or a new one) or a cluster's ADDRESS runs the trials with Ray Tune.
    Returns a `lowres.tune.TuneResult`: .trials (rows; .dataframe() for pandas), .best,
    .best_config (best.yaml, ready for `lowres.train`), .report."""
    if ray:
        from lowres.tune.on_ray import check_ray_args, run_tune_on_ray

        check_ray_args(parallel)
        return run_tune_on_ray(None if ray is True else ray, config, space, trials, out,
                               list(overrides), storage=storage, study_name=study_name,
                               pruner=pruner, per_gpu=per_gpu, seed=seed,
                               grace_epochs=grace_epochs)
    from lowres.tune import run_tune

    return run_tune(config, space, trials, out, list(overrides), storage=storage,
                    study_name=study_name, pruner=pruner, parallel=parallel, per_gpu=per_gpu,
                    seed=seed, grace_epochs=grace_epochs)


def lr_find(config: str | Path | dict, *overrides: str, start: float = 1e-6, end: float = 10.0,
            steps: int = 100, plot: str | Path | None = "lr_find.png"):
    """`lowres lr-find CONFIG key=value ...`: the LR range test on the config's first stage
    (a fresh model; no run directory). Returns a `LRFinderResult`: .suggestion and .rule
    (valley), .suggestions (every rule), .lrs, .losses, .smoothed, .plot_path (the PNG
    written to `plot`, None when plot=None) and .plot() (inline in Jupyter)."""
    from lowres.train.lr_find import find_lr

    overrides = [str(o) for o in overrides]
    with tempfile.TemporaryDirectory(prefix="lowres-config-") as tmp:
        if isinstance(config, dict):
            path = Path(tmp) / f"{config.get('name') or 'run'}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            config = path
        return find_lr(config, overrides, start=start, end=end, steps=steps, plot=plot,
                       out=sys.stdout)


def models(size: int = 40, num_classes: int = 200, timm: str | None = None):
    """`lowres models [--timm PATTERN]` as a DataFrame."""
    from lowres.models.zoo import describe_models, describe_timm

    rows = list(describe_timm(timm, size, num_classes)) if timm else describe_models(size, num_classes)
    return _pandas().DataFrame(rows)
