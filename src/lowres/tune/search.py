"""`lowres tune`: an Optuna search over a space of config keys, each trial a lowres run.

    run_tune("configs/x.yaml", "space.yaml", trials=20, out="sweeps/search")

Each worker (this process, plus `parallel - 1` copies of it) asks the shared study for a
trial, trains it into OUT/trials/trialNNN/ with the sampled values as overrides, and reports
each epoch's validation accuracy; the pruner may stop it there ("pruned": a resumable run).
The study counts trials across all workers, on all machines that share its storage, and
stops asking once it holds `trials` of them. A worker that finds a trial whose run was
stopped or killed (and is not running elsewhere) resumes it from its last.pt before asking
for new ones, so stopping `lowres tune` and starting it again loses at most one epoch.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from lowres.errors import ConfigError, LowresError
from lowres.run.lock import RunLocked
from lowres.run.read import PRUNED, RESUMABLE, run_state
from lowres.tune.space import Space, check_against_config, load_space, override
from lowres.tune.outputs import TuneResult, write_outputs
from lowres.tune.study import counts, default_storage, import_optuna, make_pruner, open_study, trial_name
from lowres.tune.watch import SearchBar

# train(config_path, overrides, run_dir, resume, on_epoch_end) -> a RunResult
TrainFn = Callable[..., Any]


def _default_train(config_path, overrides, run_dir, resume, on_epoch_end, out):
    from lowres.train.loop import train

    if resume:  # the run's own config; only this machine's thread share is new
        machine = [o for o in overrides if o.startswith("train.threads=")]
        return train(None, machine, resume=run_dir, on_epoch_end=on_epoch_end, out=out)
    return train(config_path, overrides, run_dir=run_dir, on_epoch_end=on_epoch_end, out=out)


def epochs_and_grace(config_path: str | Path, overrides: list[str],
                     grace_epochs: int | None = None) -> tuple[int, int]:
    """A trial's planned epochs, and the epochs it trains before the pruner may stop it
    (`grace_epochs`, default 1; a later first rung cost 1.4x the epochs for the same best
    on tiny40: benchmarks/RESULTS.md)."""
    from lowres import config as config_mod

    cfg = config_mod.load(config_path, list(overrides))
    epochs = sum(s.epochs for s in cfg.stages)
    grace = 1 if grace_epochs is None else grace_epochs
    if grace < 1:
        raise ConfigError(f"--grace-epochs {grace}: give 1 or more epochs")
    return epochs, min(grace, max(1, epochs))


def prepare_search(config_path: str | Path, space_path: str | Path, overrides: list[str],
                   pruner: str, trials: int, grace_epochs: int | None = None,
                   **counts: int) -> tuple[Space, int, int]:
    """Everything checked before a study or a folder exists, for a local search and a Ray one
    alike: the trial count and the other `counts` (flag name -> value, each 1 or more: the
    workers, the trials per GPU), Optuna, the space, its keys against the config, the
    pruner's name. Returns the space, a trial's planned epochs and its grace epochs (see
    epochs_and_grace)."""
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a positive number, got {trials!r}")
    for flag, value in counts.items():
        if value < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} {value}: it must be at least 1")
    import_optuna()
    space = load_space(space_path)
    check_against_config(space, config_path, overrides)
    epochs, grace = epochs_and_grace(config_path, overrides, grace_epochs)
    make_pruner(pruner, epochs, grace)  # an unknown name fails here
    return space, epochs, grace


def print_line(line: str) -> None:
    """A search's default `say`: one line to stdout at once (workers' lines interleave)."""
    print(line, flush=True)


def sample(trial, space: Space) -> dict[str, Any]:
    values = {}
    for p in space.params:
        if p.kind == "choice":
            values[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.kind == "int":
            values[p.key] = trial.suggest_int(p.key, p.low, p.high, log=p.log, step=p.step or 1)
        else:
            values[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log, step=p.step)
    return values


class _Reporter:
    """The epoch hook of one trial: report val_acc, ask the pruner, count pruned epochs."""

    def __init__(self, trial, on_epoch: Callable[[dict], None] = lambda row: None):
        self.trial, self.on_epoch = trial, on_epoch

    def __call__(self, row: dict) -> str | None:
        self.on_epoch(row)
        value = row.get("val_acc")
        if value is None:
            return None  # no validation split: nothing to judge by
        self.trial.report(float(value), int(row["epoch"]))
        return "pruned" if self.trial.should_prune() else None


def _finish_trial(study, trial, result, run_dir: Path) -> str:
    """Tell the study how the trial ended; returns the word for the progress line."""
    optuna = import_optuna()
    state = run_state(run_dir)
    if result is not None and result.state == "finished":
        value = result.best_val_acc
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return "finished without a validation accuracy (failed for the search)"
        study.tell(trial, float(value))
        return "finished"
    if state == PRUNED:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return "pruned"
    return "stopped"  # a signal: the trial stays RUNNING in the study, resumed on the next start


@contextmanager
def _quiet_progress():
    old = os.environ.get("LOWRES_PROGRESS")
    os.environ["LOWRES_PROGRESS"] = "0"  # per-trial bars would tangle with the search's lines
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LOWRES_PROGRESS", None)
        else:
            os.environ["LOWRES_PROGRESS"] = old


def _orphans(study, out: Path) -> list:
    """RUNNING trials whose run is not running anywhere: stopped or killed, resumable."""
    optuna = import_optuna()
    found = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        run_dir = out / "trials" / trial_name(t.number)
        if run_state(run_dir) in (RESUMABLE, PRUNED) and t.user_attrs.get("out") == str(out):
            found.append(t)
    return found


def _claim(run_dir: Path) -> bool:
    """Take a stopped trial's run lock for a moment to see that no other worker resumes it."""
    from lowres.run.lock import held_by_other

    return held_by_other(run_dir) is not True


def run_tune(config_path: str | Path, space_path: str | Path, trials: int, out: str | Path,
             overrides: list[str] = (), storage: str | None = None, study_name: str | None = None,
             pruner: str = "asha", parallel: int = 1, per_gpu: int = 1, seed: int | None = None,
             grace_epochs: int | None = None, train_fn: TrainFn | None = None,
             say: Callable[[str], None] | None = None, worker: bool = False) -> TuneResult:
    """Run (or join, or resume) a search until its study holds `trials` trials; see the module
    docstring. Raises ConfigError/LowresError (one line) before anything is created when the
    space, a key, the pruner or the database is wrong."""
    say = say or print_line
    overrides = list(overrides)
    space, epochs, grace = prepare_search(config_path, space_path, overrides, pruner, trials,
                                          grace_epochs, parallel=parallel, per_gpu=per_gpu)
    if worker:  # a helper: its parent put its GPU or its thread share in the environment
        envs = [{k: os.environ[k] for k in ("LOWRES_THREADS",) if k in os.environ}]
    else:
        envs = worker_envs(parallel, per_gpu, overrides)
    out = Path(out).resolve()
    url = storage or default_storage(out)
    study_name = study_name or out.name
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    where = str(out / "study.db") if storage is None else url
    study = open_study(url, study_name, space, make_pruner(pruner, epochs, grace), seed, where)
    out.mkdir(parents=True, exist_ok=True)
    write_search_json(out, study_name, url, space, config_path, overrides, trials, pruner)
    train_fn = train_fn or _default_train
    helpers = _start_helpers(envs[1:], config_path, space_path, trials, out, overrides,
                             storage, study_name, pruner, grace)
    machine = [f"train.threads={envs[0]['LOWRES_THREADS']}"] if "LOWRES_THREADS" in envs[0] else []
    stopped = False
    watch = SearchBar(study, trials, epochs, say) if not worker else None
    try:
        with _quiet_progress():
            stopped = _work(study, space, trials, out, config_path, overrides, machine, train_fn,
                            watch or _Lines(say))
    finally:
        if watch is not None:
            watch.close()
        for proc in helpers:
            if stopped:
                proc.terminate()  # they save their trials (SIGTERM) and stay resumable
            proc.wait()
    if worker:
        return TuneResult(out, study_name, stopped=stopped)
    return write_outputs(study, space, out, config_path, overrides, stopped, study_name)


def write_search_json(out: Path, study_name: str, url: str, space: Space, config_path,
                      overrides: list[str], trials: int, pruner: str) -> None:
    """OUT/search.json marks a search folder (`lowres runs` shows each trial's values) and
    says what it searches; the database password is left out."""
    from sqlalchemy.engine import make_url

    from lowres.basics.disk import replace_text

    shown = make_url(url).render_as_string(hide_password=True)
    replace_text(out / "search.json", json.dumps(
        {"study": study_name, "storage": shown, "config": str(Path(config_path).resolve()),
         "overrides": overrides, "trials": trials, "pruner": pruner, "space": space.spec()},
        indent=1) + "\n")


def worker_envs(parallel: int, per_gpu: int, overrides: list[str]) -> list[dict[str, str]]:
    """What each of the `parallel` workers adds to its environment: its GPU
    (CUDA_VISIBLE_DEVICES, `per_gpu` workers per card; this process is worker 0 and keeps
    the first visible GPU, which is its default device), or on a CPU machine its share of
    the cores (LOWRES_THREADS, turned into train.threads unless the overrides set it)."""
    from lowres.sweep.parallel import slots

    envs = slots(parallel, per_gpu)
    if any("CUDA_VISIBLE_DEVICES" in e for e in envs) or \
            any(o.startswith("train.threads=") for o in overrides) or parallel == 1:
        return envs
    threads = max(1, (os.cpu_count() or 1) // parallel)
    return [{"LOWRES_THREADS": str(threads)} for _ in envs]


def _start_helpers(envs: list[dict[str, str]], config_path, space_path, trials, out, overrides,
                   storage, study_name, pruner, grace: int) -> list[subprocess.Popen]:
    cmd = [sys.executable, "-m", "lowres", "tune", str(config_path), "--space", str(space_path),
           "--trials", str(trials), "--out", str(out), "--study-name", study_name,
           "--pruner", pruner, "--grace-epochs", str(grace), "--worker", *overrides]
    if storage:
        cmd += ["--storage", storage]
    procs = []
    for i, env in enumerate(envs):
        log = open(out / f"worker{i + 1}.log", "a")  # noqa: SIM115 (the child holds it)
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **env}))
    return procs


class _Lines:
    """What a helper worker shows: its lines only (its output goes to OUT/workerN.log)."""

    def __init__(self, say):
        self.ended = say

    def epoch(self, name: str, row: dict) -> None:
        pass


def _work(study, space: Space, trials: int, out: Path, config_path, overrides, machine, train_fn,
          watch) -> bool:
    """This worker's loop: resume orphaned trials, then ask for new ones. True when stopped
    by a signal."""
    optuna = import_optuna()
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    while True:
        orphans = [t for t in _orphans(study, out) if _claim(out / "trials" / trial_name(t.number))]
        if orphans:
            frozen = orphans[0]
            trial = optuna.trial.Trial(study, frozen._trial_id)
            name, resume = trial_name(frozen.number), True
            params = frozen.params
        else:
            done = len(study.get_trials(deepcopy=False))
            if done >= trials:
                return False
            trial = study.ask()
            name, resume = trial_name(trial.number), False
            if trial.number >= trials:  # another worker asked at the same moment: not trained
                trial.set_user_attr("surplus", True)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return False
            params = sample(trial, space)
            trial.set_user_attr("out", str(out))
            trial.set_user_attr("run_dir", str(out / "trials" / name))
        run_dir = out / "trials" / name
        trial_overrides = [*overrides, *(override(k, v) for k, v in params.items()), *machine]
        t0 = time.time()
        with open(logs / f"{name}.log", "a") as log:
            try:
                reporter = _Reporter(trial, lambda row, name=name: watch.epoch(name, row))
                result = train_fn(config_path, trial_overrides, run_dir, resume, reporter, log)
            except RunLocked:
                continue  # another worker took this stopped trial a moment before us
            except LowresError as exc:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                watch.ended(f"{name} failed: {exc}")
                continue
        word = _finish_trial(study, trial, result, run_dir)
        watch.ended(progress_line(study, name, word, result, time.time() - t0))
        if word == "stopped":
            return True


def progress_line(study, name: str, word: str, result, seconds: float) -> str:
    """One line per trial end: what it did, the search's counts and the best so far."""
    from lowres.basics.durations import format_duration

    c = counts(study)
    epochs = f", {result.epochs} epochs" if result is not None else ""
    acc = f" val {result.best_val_acc:.4f}" if result is not None and result.best_val_acc is not None else ""
    try:
        best = study.best_trial
        best_text = f"best {best.value:.4f} ({trial_name(best.number)})"
    except ValueError:  # no finished trial yet
        best_text = "best -"
    return (f"{name} {word}{acc}{epochs} in {format_duration(seconds)} | done {c['done']}, "
            f"pruned {c['pruned']}, running {c['running']}, failed {c['failed']} | {best_text}")
