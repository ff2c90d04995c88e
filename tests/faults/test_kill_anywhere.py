"""Promise 1: SIGKILL at any moment, then `--resume`, ends bitwise equal to a run never
stopped (CPU): weights, EMA-free config, and every metrics.csv row but the timings.

Each test run draws its kill moments from a seed (printed on failure; pin it with
LOWRES_KILL_SEED=N): mid-step, mid-checkpoint-write, between a checkpoint's write and its
rename, mid metrics.csv row, mid events.jsonl line, while config.yaml is written at
start-up. `python tests/faults/soak.py` runs many more, and wall-clock kills from outside.
"""
import os
import random
import time

import pytest

from kill_harness import differences, draw, kill_config, killed_run, run_cli
from run_configs import write_config
from lowres.run.read import run_state
from lowres.run.log import read_events

KILLS_PER_TEST_RUN = 3


@pytest.fixture(scope="module")
def straight(tiny_data, tmp_path_factory):
    """The run never stopped, trained by the same driver in a process of its own."""
    root = tmp_path_factory.mktemp("straight")
    cfg = kill_config(write_config, root / "c.yaml", tiny_data)
    assert run_cli(["train", str(cfg), "--run-dir", str(root / "run")]) == 0
    return cfg, root / "run"


def test_sigkill_at_random_moments_then_resume_ends_bitwise_equal(straight, tmp_path):
    seed = int(os.environ.get("LOWRES_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    plan = [draw(rng) for _ in range(KILLS_PER_TEST_RUN)]
    cfg, reference = straight
    run = tmp_path / "run"
    outcome = killed_run(cfg, run, plan)
    where = f"(LOWRES_KILL_SEED={seed}, kills {outcome.kills})"
    assert differences(reference, run) == [], where
    assert run_state(run) == "finished", where
    # events.jsonl stays a list of whole records (a line a kill tore is skipped by readers
    # and never merged with the next), ending with the run's end.
    assert read_events(run)[-1]["event"] == "run_end", where


def test_a_torn_checkpoint_and_a_torn_metrics_header_then_resume_end_bitwise_equal(straight,
                                                                                  tmp_path):
    """Two moments that every test run tries (the random draws above try others): half a
    checkpoint written (the background writer's thread dies with the process), and the
    first metrics.csv append cut inside its header."""
    cfg, reference = straight
    run = tmp_path / "run"
    outcome = killed_run(cfg, run, [("checkpoint", 2), ("metrics", 1)])
    assert len(outcome.kills) == 2
    assert differences(reference, run) == []
    assert not list(run.glob(".*.tmp*")) and not list((run / "checkpoints").glob(".*.tmp*"))
