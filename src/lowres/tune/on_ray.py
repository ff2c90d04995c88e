"""`lowres tune --ray [ADDRESS]`: the same search, its trials run by Ray Tune on a cluster.

    run_tune_on_ray(None, "configs/x.yaml", "space.yaml", trials=20, out="/shared/search")

Ray Tune schedules the trials; the study is the one a local search uses:
- Ray's OptunaSearch samples each trial with TPE into the study (OUT/study.db or --storage),
  so `lowres runs`, best.yaml, report.html and a local `lowres tune` on the folder all see it;
- Ray's ASHA scheduler (`--pruner asha`; `hyperband`: its asynchronous form with 3 brackets)
  stops unpromising trials at an epoch's end, and the study records them as pruned;
- each trial trains a lowres run in OUT/trials/trialNNN/ inside a Ray worker that holds one
  CPU, or a GPU share (1/`per_gpu`) on a cluster with GPUs.
OUT must be a folder every node sees (a shared file system): a trial whose worker or node
dies is retried (RETRIES times) and resumes its run from last.pt there, and Ray keeps its
experiment in OUT/ray/, so the same command resumes a stopped search. Needs the `ray` and
`tune` extras.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from lowres.errors import ConfigError, LowresError
from lowres.sweep.on_ray import RETRIES, connect
from lowres.run.read import PRUNED
from lowres.tune.outputs import TuneResult, write_outputs
from lowres.tune.search import prepare_search, print_line, progress_line, sample, write_search_json
from lowres.tune.space import Space, override
from lowres.tune.study import default_storage, import_optuna, open_storage, open_study, trial_name

NUMBER = "lowres_trial"  # the key in a Ray trial's config holding its study trial number
METRIC = "val_acc"
STOPPED_BY_RAY = PRUNED  # the run's stop reason when Ray's scheduler ends it (run_state)
# In a trial's last report when its run finished. Ray marks a trial its scheduler stopped
# "done" too, so this is how the driver tells a finished trial from a pruned one.
FINISHED = "lowres_finished"


def run_tune_on_ray(address: str | None, config_path: str | Path, space_path: str | Path,
                    trials: int, out: str | Path, overrides: list[str] = (),
                    storage: str | None = None, study_name: str | None = None,
                    pruner: str = "asha", per_gpu: int = 1, seed: int | None = None,
                    grace_epochs: int | None = None, say: Callable[[str], None] | None = None) -> TuneResult:
    """Run (or resume) a search on Ray Tune until the study holds `trials` trials; one
    LowresError/ConfigError line before anything starts when the input is wrong."""
    say = say or print_line
    overrides = list(overrides)
    space, epochs, grace = prepare_search(config_path, space_path, overrides, pruner, trials,
                                          grace_epochs, per_gpu=per_gpu)
    _require_validation(config_path, overrides)
    try:
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter
    except ImportError:
        raise LowresError("lowres tune --ray needs Ray Tune: pip install 'lowres[ray]'") from None
    ray = connect(address)

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(out)
    study_name = study_name or out.name
    where = str(out / "study.db") if storage is None else url
    optuna = import_optuna()
    study = open_study(url, study_name, space, optuna.pruners.NopPruner(), seed, where)
    write_search_json(out, study_name, url, space, config_path, overrides, trials, pruner)

    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    slots = int(gpus * per_gpu) if gpus else int(resources.get("CPU", 1))
    machine = [] if gpus else ["train.threads=1"]  # the one CPU each trial holds
    trainable = tune.with_resources(
        _trainable(str(Path(config_path).resolve()), overrides, machine, out, epochs, url,
                   study_name),
        {"cpu": 1, "gpu": 1.0 / per_gpu} if gpus else {"cpu": 1})
    say(f"lowres: Ray Tune runs the search on {slots} slot(s) "
        f"({'GPU share 1/' + str(per_gpu) if gpus else 'one CPU each'})")
    stopped = False
    latest = _latest_experiment(out)
    if latest is not None and _unfinished(study, out):  # a stopped search: Ray resumes it
        say(f"lowres: resuming the Ray Tune experiment in {latest}")
        _fit_quietly(tune.Tuner.restore(str(latest), trainable, resume_unfinished=True,
                                        resume_errored=True))
        stopped = bool(_unfinished(study, out))
    held = len([t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")])
    if not stopped and held < trials:  # a new search, or one given more --trials
        searcher = ConcurrencyLimiter(_prune_aware_search()(
            space=_DefineByRun(space, out), metric=METRIC, mode="max",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
            study_name=study_name, storage=open_storage(url)),
            max_concurrent=max(1, slots))  # TPE learns from finished trials: ask as slots free
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher,
                                        scheduler=_scheduler(pruner, epochs, grace),
                                        num_samples=trials - held, metric=METRIC, mode="max"),
            run_config=tune.RunConfig(name=f"{study_name}-from{held:03d}",
                                      storage_path=str(out / "ray"),
                                      failure_config=tune.FailureConfig(max_failures=RETRIES),
                                      callbacks=[_progress(study, out, say)], verbose=0))
        _fit_quietly(tuner)
        stopped = bool(_unfinished(study, out))  # a Ctrl-C: Ray saved the experiment
    return write_outputs(study, space, out, config_path, overrides, stopped, study_name)


def _latest_experiment(out: Path) -> Path | None:
    """The newest of Ray's experiments in OUT/ray/ (one per start that had trials to add)."""
    from ray import tune

    found = [p for p in (out / "ray").glob("*") if tune.Tuner.can_restore(str(p))]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _unfinished(study, out: Path) -> list:
    """This folder's Ray trials that the study still holds as running."""
    optuna = import_optuna()
    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if t.user_attrs.get("ray") and t.user_attrs.get("out") == str(out)]


def _fit_quietly(tuner):
    """tuner.fit() without Ray's own console tables: the search prints its lines itself."""
    old = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # with verbose=0: Ray's legacy reporter, silent
    try:
        ray_tune_log = logging.getLogger("ray.tune")
        level = ray_tune_log.level
        # Ray's own lines (a retried trial's traceback, the interrupt notice) would bury the
        # search's; its callbacks say the same in one line each.
        ray_tune_log.setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            # A resumed trial reports its epochs to OptunaSearch from step 1 again (Ray's
            # iteration count restarts); the study keeps the first report of each step.
            warnings.filterwarnings("ignore", message="The reported value is ignored")
            try:
                return tuner.fit()
            finally:
                ray_tune_log.setLevel(level)
    finally:
        if old is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = old


def _require_validation(config_path, overrides: list[str]) -> None:
    from lowres import config as config_mod

    cfg = config_mod.load(config_path, list(overrides))
    if not cfg.data.val_fraction and not cfg.data.val_dir:
        raise ConfigError("lowres tune --ray: the trials have no validation split to judge them "
                          "by; set data.val_fraction (e.g. 0.1) or data.val_dir")


def _scheduler(pruner: str, epochs: int, grace: int):
    """Ray's counterpart of each --pruner: rungs at grace x 1, 3, 9... epochs, as in
    study.make_pruner."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler

    if pruner == "none":
        return FIFOScheduler()
    brackets = 3 if pruner == "hyperband" else 1  # ASHA is the one-bracket case
    return AsyncHyperBandScheduler(time_attr="epoch", max_t=max(1, epochs), grace_period=grace,
                                   reduction_factor=3, brackets=brackets)


class _DefineByRun:
    """OptunaSearch's space: sample the trial as a local worker does and tag it, so every
    lowres tool finds its run (user attrs) and the Ray trial knows its number. A class, not
    a closure: OptunaSearch saves itself with pickle."""

    def __init__(self, space: Space, out: Path):
        self.space, self.out = space, out

    def __call__(self, trial) -> dict[str, Any]:
        sample(trial, self.space)
        trial.set_user_attr("out", str(self.out))
        trial.set_user_attr("run_dir", str(self.out / "trials" / trial_name(trial.number)))
        trial.set_user_attr("ray", True)
        return {NUMBER: trial.number}


def _prune_aware_search():
    from ray.tune.search.optuna import OptunaSearch

    class PruneAwareSearch(OptunaSearch):
        """OptunaSearch, except that a trial that ended without its run's finished report
        (the scheduler stopped it) is told to the study as PRUNED: Ray's own tells it
        COMPLETE with its last value, and a pruned trial must not become the best nor feed
        TPE as a finished one."""

        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False):
            if result and not error and not result.get(FINISHED):
                result = None  # OptunaSearch tells a trial that ended without a value PRUNED
            super().on_trial_complete(trial_id, result=result, error=error)

    return PruneAwareSearch


# Set while no trial's run is in progress in this worker process (see _trainable's cleanup).
_NO_RUN = threading.Event()
_NO_RUN.set()
STOP_GRACE_S = 300  # how long a stopping trial may take to save its checkpoint and status


def _trainable(config_path: str, overrides: list[str], machine: list[str], out: Path,
               epochs: int, storage_url: str, study_name: str):
    """The Trainable Ray Tune runs for a trial, in a worker on any node: Ray's wrapper of a
    function, except that stopping it waits for the run to stop cleanly. Ray stops a trial
    (pruned, or the search stopped) by waking its thread and then ending the worker; without
    the wait, the worker ended while the run was still saving, leaving a killed run."""
    from ray.tune.trainable.function_trainable import wrap_function

    def run_trial(params: dict) -> None:
        _run_trial(params, config_path, overrides, machine, out, epochs, storage_url, study_name)

    class LowresTrial(wrap_function(run_trial)):
        def cleanup(self):
            super().cleanup()  # wakes the trial's thread: its pending report raises SystemExit
            _wait_for_the_run()

    return LowresTrial


def _wait_for_the_run() -> None:
    _NO_RUN.wait(timeout=STOP_GRACE_S)  # the run saves last.pt and its status


def _run_trial(params: dict, config_path: str, overrides: list[str], machine: list[str],
               out: Path, epochs: int, storage_url: str, study_name: str) -> None:
    from lowres.train.loop import train

    params = dict(params)
    number = params.pop(NUMBER)
    name = trial_name(number)
    hook = _ReportToRay(epochs, storage_url, study_name, number)
    run_dir = out / "trials" / name
    (out / "logs").mkdir(exist_ok=True)
    _NO_RUN.clear()
    try:
        with open(out / "logs" / f"{name}.log", "a") as log:
            if (run_dir / "config.yaml").is_file():  # retried after a death, or resumed
                result = train(None, machine, resume=run_dir, on_epoch_end=hook, out=log)
            else:
                values = [override(k, v) for k, v in params.items()]
                result = train(config_path, [*overrides, *values, *machine], run_dir=run_dir,
                               on_epoch_end=hook, out=log)
    finally:
        _NO_RUN.set()
    if result is not None and result.state == "finished":
        # The trial's value, as a local search tells it: its best.pt's val accuracy.
        _report({"epoch": epochs, METRIC: result.best_val_acc, FINISHED: True})


class _ReportToRay:
    """The epoch hook inside a Ray trial: send each epoch's metrics to Tune, except the
    last planned one (the trial reports its value once its run has finished, so the driver
    sees a finished trial as such). When Tune has decided to stop the trial, the report
    raises SystemExit and the run stops there, its last.pt saved, resumable like any stop:
    as a pruned run when the study says the scheduler pruned it (the driver tells the
    study before it stops the trial), as a plain stop when the whole search was stopped."""

    def __init__(self, max_epochs: int, storage_url: str, study_name: str, number: int):
        self.max_epochs, self.number = max_epochs, number
        self.storage_url, self.study_name = storage_url, study_name

    def __call__(self, row: dict) -> str | None:
        if int(row["epoch"]) >= self.max_epochs:
            return None
        metrics = {"epoch": int(row["epoch"])}
        if row.get(METRIC) is not None:
            metrics[METRIC] = float(row[METRIC])
        return None if _report(metrics) else self._why_stopped()

    def _why_stopped(self) -> str:
        optuna = import_optuna()
        try:
            storage = open_storage(self.storage_url)
            trial_id = storage.get_trial_id_from_study_id_trial_number(
                storage.get_study_id_from_name(self.study_name), self.number)
            pruned = storage.get_trial(trial_id).state == optuna.trial.TrialState.PRUNED
        except Exception:  # noqa: BLE001 (the study out of reach: call it a plain stop)
            pruned = False
        return STOPPED_BY_RAY if pruned else "stopped by Ray Tune"


def _report(metrics: dict) -> bool:
    """tune.report; False when Tune stopped the trial at this report."""
    from ray import tune

    try:
        tune.report(metrics)
    except SystemExit:
        return False
    return True


def _progress(study, out: Path, say: Callable[[str], None]):
    """A Ray Tune callback on the driver: one line per trial end (the search's counts and
    its best so far, as a local search prints it), and one per retry after a death."""
    from ray.tune import Callback

    class Progress(Callback):
        def __init__(self):
            self.started: dict[str, float] = {}

        def on_trial_start(self, iteration, trials, trial, **info):
            self.started.setdefault(trial.trial_id, time.time())

        def on_trial_recover(self, iteration, trials, trial, **info):
            say(f"{_name(trial)}: its worker died; Ray retries it from its last.pt")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._ended(trial, "finished" if (trial.last_result or {}).get(FINISHED) else "pruned")

        def on_trial_error(self, iteration, trials, trial, **info):
            error = getattr(trial, "error_file", None)
            self._ended(trial, f"failed after {RETRIES} retries (see "
                               f"{out / 'logs' / (_name(trial) + '.log')}"
                               f"{' and ' + str(error) if error else ''})")

        def _ended(self, trial, word: str) -> None:
            # A finished trial's last report holds its value (best.pt's val accuracy); a
            # pruned trial's value is its last epoch's.
            last = trial.last_result or {}
            result = SimpleNamespace(epochs=last.get("epoch", 0), best_val_acc=last.get(METRIC))
            seconds = time.time() - self.started.get(trial.trial_id, time.time())
            say(progress_line(study, _name(trial), word, result, seconds))

    return Progress()


def _name(trial) -> str:
    return trial_name(trial.config.get(NUMBER, -1))


def check_ray_args(parallel: int) -> None:
    if parallel != 1:
        raise ConfigError("--ray and --parallel: choose one (under --ray, Ray runs as many "
                          "trials at once as the cluster has slots)")


