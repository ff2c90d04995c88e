"""The Optuna study behind `lowres tune`: its storage, sampler, pruner and the space it was
made with.

The study lives in an Optuna RDB storage: SQLite in the search folder by default
(DIR/study.db), or any SQLAlchemy database URL (postgresql://..., mysql://...), which lets
workers on many machines share one study. Optuna is an optional extra: `import_optuna` names
it when it is missing.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from lowres.errors import ConfigError, LowresError
from lowres.tune.space import Space

try:
    import fcntl
except ImportError:  # Windows: no file locks here; the retry in open_storage still covers it
    fcntl = None

PRUNERS = ("asha", "hyperband", "none")
SPACE_ATTR = "lowres_space"  # the study's user attribute holding the space it was made with


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise LowresError("lowres tune needs Optuna: pip install 'lowres[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # lowres prints its own lines
    return optuna


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_storage(url: str):
    """An RDB storage, or one LowresError line when the database cannot be reached.

    Optuna creates its tables on the first open, and two workers opening a new database at
    the same moment race: one fails with "table studies already exists" or a UNIQUE
    constraint on alembic_version. A SQLite file is opened under a lock file beside it; a
    server database is retried, since the loser's error means the winner made the schema.
    """
    optuna = import_optuna()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local workers write one file: wait for the lock instead of failing at once.
        kwargs = {"connect_args": {"timeout": 120}}
    for attempt in range(SCHEMA_RACE_TRIES):
        try:
            with _sqlite_file_lock(url):
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # noqa: BLE001 (SQLAlchemy raises many kinds; all mean "cannot open it")
            text = str(exc).strip()
            if attempt + 1 < SCHEMA_RACE_TRIES and any(s in text.lower() for s in SCHEMA_RACE):
                time.sleep(0.5 * (attempt + 1))
                continue
            first = text.splitlines()[0] if text else type(exc).__name__
            raise LowresError(f"cannot open the study database {url}: {first[:200]} "
                              "(check the URL, the server and its driver)") from None
    raise AssertionError("unreachable")


SCHEMA_RACE_TRIES = 4
SCHEMA_RACE = ("already exists", "unique constraint", "duplicate")  # another worker made it


@contextlib.contextmanager
def _sqlite_file_lock(url: str):
    """Hold an exclusive lock on FILE.lock while a SQLite file is first opened."""
    path = url.split(":///", 1)[1] if url.startswith("sqlite:///") else ""
    if fcntl is None or not path or path == ":memory:" or not Path(path).parent.is_dir():
        yield  # in memory, or a folder that is missing: SQLAlchemy reports it
        return
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_pruner(name: str, max_epochs: int, grace: int = 1):
    """The pruner of --pruner NAME; its first rung after `grace` epochs."""
    optuna = import_optuna()
    if name == "asha":  # asynchronous successive halving: rungs at grace x 1, 3, 9... epochs
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=grace, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=grace,
                                              max_resource=max(grace, max_epochs),
                                              reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}: choose one of {', '.join(PRUNERS)}")


def open_study(storage_url: str, study_name: str, space: Space, pruner, seed: int | None,
               where: str):
    """Create the study or join it; a study made with another space is refused by name."""
    optuna = import_optuna()
    storage = open_storage(storage_url)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, 5))
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    spec = study.user_attrs.get(SPACE_ATTR)
    if spec is None:
        study.set_user_attr(SPACE_ATTR, space.spec())
    elif spec != space.spec():
        raise LowresError(f"study {study_name} in {where} was made with a different space: "
                          f"{space.difference(spec)}; use a new --out or --study-name")
    return study


def trial_name(number: int) -> str:
    return f"trial{number:03d}"


def counts(study) -> dict[str, int]:
    """Trials by state: done (finished), pruned, running, failed (surplus asks left out)."""
    optuna = import_optuna()
    states = optuna.trial.TrialState
    out = {"done": 0, "pruned": 0, "running": 0, "failed": 0}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):
            continue
        key = {states.COMPLETE: "done", states.PRUNED: "pruned", states.RUNNING: "running"}.get(
            t.state, "failed")
        out[key] += 1
    return out
