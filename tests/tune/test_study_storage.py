"""Opening one new SQLite study from several processes at once: Optuna creates the schema
on first open, and two first opens racing each other failed with "table studies already
exists" or a UNIQUE constraint on alembic_version (seen in CI, 4 of 10 rounds here)."""
import multiprocessing as mp

import pytest

pytest.importorskip("optuna")
from lowres.tune.study import open_storage  # imported before the fork, so the opens overlap

ROUNDS, WORKERS = 6, 3


def _open(url, barrier, results):
    barrier.wait()
    try:
        open_storage(url)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 (the test reports whatever went wrong)
        results.put(str(exc))


def test_first_opens_racing_on_one_new_sqlite_file_all_succeed(tmp_path):
    ctx = mp.get_context("fork")  # fast start, so the opens really overlap
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'study{round_}.db'}"
        barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(url, barrier, results)) for _ in range(WORKERS)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok"] * WORKERS, f"round {round_}: {outcomes}"


def test_an_unreachable_database_is_still_one_clear_line(tmp_path):
    from lowres.errors import LowresError

    missing = tmp_path / "no" / "such" / "dir" / "study.db"
    with pytest.raises(LowresError, match=r"cannot open the study database .*check the URL"):
        open_storage(f"sqlite:///{missing}")
