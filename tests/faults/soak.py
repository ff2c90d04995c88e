"""The long kill soak (opt-in, not part of `make test`): many SIGKILLs at random moments,
each run resumed to the end and compared bitwise with a run never stopped.

    .venv/bin/python tests/faults/soak.py --chains 10 --kills 3 --wall-chains 4 --seed 1

Injected chains kill at drawn (moment, occurrence) pairs (see kill_driver.py); wall-clock
chains kill from outside after a random delay (start-up, imports and data loading
included). Prints one line per chain and a summary.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from kill_harness import (differences, draw, kill_config, killed_run, run_cli,  # noqa: E402
                          wall_clock_killed_run)
from run_configs import write_config  # noqa: E402

from lowres.data.synthetic import make_competition_dataset  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--kills", type=int, default=3, help="kills per chain")
    ap.add_argument("--wall-chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="lowres-soak-"))
    os.environ["LOWRES_CACHE_DIR"] = str(root / "cache")
    data = make_competition_dataset(root / "data", classes=4, per_class=24, test_per_class=3,
                                    size=16)
    cfg = kill_config(write_config, root / "c.yaml", data)
    t0 = time.perf_counter()
    assert run_cli(["train", str(cfg), "--run-dir", str(root / "straight")]) == 0
    straight_s = time.perf_counter() - t0
    struck, equal, chains, by_moment = 0, 0, 0, Counter()
    for i in range(args.chains + args.wall_chains):
        run = root / f"run{i}"
        if i < args.chains:
            outcome = killed_run(cfg, run, [draw(rng) for _ in range(args.kills)])
        else:
            if i == args.chains:  # the machine's load changes: time a whole run again now
                t0 = time.perf_counter()
                assert run_cli(["train", str(cfg), "--run-dir", str(root / "timing")]) == 0
                straight_s = time.perf_counter() - t0
            # Fractions of a whole run's time: a resumed process has less left to do.
            delays = [rng.uniform(0.0, frac * straight_s)
                      for frac in (0.9, 0.6, 0.4)[: args.kills]]
            outcome = wall_clock_killed_run(cfg, run, delays)
        diff = differences(root / "straight", run)
        chains += 1
        struck += len(outcome.kills)
        by_moment.update(m for m, _ in outcome.kills)
        equal += not diff
        tried = "" if i < args.chains else f" (delays {[round(d, 1) for d in delays]})"
        print(f"chain {i}: kills {outcome.kills}{tried} -> "
              f"{diff or 'bitwise equal'}", flush=True)
    print(f"\n{struck} kills struck in {chains} chains ({dict(by_moment)}); "
          f"{equal}/{chains} chains ended bitwise equal to the run never stopped")
    return 0 if equal == chains else 1


if __name__ == "__main__":
    sys.exit(main())
