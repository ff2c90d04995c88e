"""`lowres sweep`: run a grid of overrides (times seeds) one run after another, resumably.

    plan_sweep("configs/x.yaml", ["model.dropout=0.5,0.8", "stages.0.optimizer.lr=0.1,0.2"],
               seeds=[0, 1])
    -> 8 points named like dropout0.5_lr0.1_seed0, each with its override list

`run_sweep` trains the points into sweep_dir/<point name>/ and can be stopped and rerun
with the same arguments at any time: a finished point is skipped, an unfinished point with a
checkpoint is resumed, any other point starts fresh. At the end it compares all points
(grouped by seed when seeds are given) into sweep_dir/comparison/.

Like demo.py, this is a workflow over training (the `train_fn` it is given) and tracking
(run states, `lowres.track.compare`), not a part of either.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from lowres.errors import ConfigError, LowresError
from lowres.run.lock import RunLocked, held_by_other
from lowres.config.tree import short_keys
from lowres.sweep.grid import name_part, parse_grid
from lowres.run.read import FINISHED, RESUMABLE, RUNNING, run_state
from lowres.basics.disk import replace_text
from lowres.run.log import now_iso

MAX_NAME = 120

TrainFn = Callable[[str, list, Path, bool], Any]
# (base config, sweep dir, [(tag, point, train overrides)]) -> (failed point names, stopped_at)
Executor = Callable[[Path, Path, list], "tuple[list[str], str | None]"]


@dataclass
class SweepResult:
    """What `run_sweep` did: `stopped_at` names the point whose trainer stopped early (it
    caught SIGINT/SIGTERM and saved last.pt): the sweep ended there, resumable."""

    sweep_dir: Path
    stopped_at: str | None = None


@dataclass
class SweepPoint:
    """One run of a sweep: its directory name and its overrides (grid values, then seed)."""

    name: str
    overrides: list[str]
    values: dict[str, Any] = field(default_factory=dict)  # dotted key -> parsed value
    seed: int | None = None


def plan_sweep(base_config_path: str | Path, grid: Sequence[str],
               seeds: Sequence[int] | None = None,
               grid_file: str | Path | None = None) -> list[SweepPoint]:
    """The points of a sweep: the cartesian product of the grid values, then of the seeds.

    grid: 'dotted.key=V1,V2,...' strings, read as YAML flow lists (0.1 is a float, true a
    bool, text stays text; commas inside [...] or quotes do not split); grid_file: a YAML
    file of `dotted.key: [V1, V2]` (see parse_grid). seeds: one
    run per seed per grid point (adds `seed=N`), None to keep the config's seed.
    Names are built from short key names and values ('dropout0.5_lr0.1_seed0'), contain only
    [A-Za-z0-9._+-], are unique and depend only on the arguments. The base config path is
    not read here (`run_sweep` checks every point's config before training).
    Raises ConfigError (one line) for a malformed grid.
    """
    del base_config_path  # the plan depends on the grid only; kept for a stable signature
    axes = parse_grid(grid, grid_file)
    keys = [k for k, _ in axes]
    if seeds is not None:
        if "seed" in keys:
            raise ConfigError("grid key 'seed' and --seeds both set the seed: use one")
        seeds = list(seeds)
        bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool)]
        if bad:
            raise ConfigError(f"seeds must be integers, got {bad[0]!r}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds are repeated: {seeds}")
        if not seeds:
            seeds = None
    shorts = short_keys(keys)
    points: list[SweepPoint] = []
    for combo in itertools.product(*[values for _, values in axes]):
        overrides = [f"{k}={raw}" for k, (raw, _v) in zip(keys, combo)]
        values = {k: v for k, (_raw, v) in zip(keys, combo)}
        name_parts = [name_part(shorts[k], raw) for k, (raw, _v) in zip(keys, combo)]
        for seed in (seeds if seeds is not None else [None]):
            ov = list(overrides) + ([f"seed={seed}"] if seed is not None else [])
            parts = name_parts + ([f"seed{seed}"] if seed is not None else [])
            points.append(SweepPoint(name="_".join(parts) or "base", overrides=ov,
                                     values=dict(values), seed=seed))
    # Long names are cut and made unique by a hash; sanitising collisions get a suffix.
    used: set[str] = set()
    for p in points:
        name = p.name
        if len(name) > MAX_NAME:
            digest = hashlib.sha1("\n".join(p.overrides).encode()).hexdigest()[:8]
            name = f"{name[:MAX_NAME - 9]}-{digest}"
        base, n = name, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        p.name = name
    return points


# --------------------------------------------------------------------------- running


def _say(text: str) -> None:
    print(f"sweep: {text}", flush=True)


def _check_point(base_config_path: Path, point: SweepPoint, overrides: list[str]) -> None:
    from lowres import config as config_mod  # config imports nothing from here

    try:
        config_mod.load(base_config_path, overrides, require_root=False)
    except ConfigError as exc:
        raise ConfigError(f"sweep point {point.name}: {exc}") from None


def _set_aside(run_dir: Path) -> Path | None:
    """Move a run directory that cannot be resumed out of the way (kept, never deleted)."""
    if not run_dir.exists():
        return None
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()
        return None
    n = 1
    while True:
        target = run_dir.with_name(f"{run_dir.name}.attempt{n}")
        if not target.exists():
            break
        n += 1
    shutil.move(str(run_dir), str(target))
    return target


def prepare_point(run_dir: Path, tag: str) -> bool | None:
    """Just before a point trains: None to skip it (finished, or another process trains
    it), else whether to resume it. A directory that cannot be resumed is set aside."""
    state = run_state(run_dir) if run_dir.exists() else None
    if state == FINISHED:
        _say(f"{tag}: finished, skipped")
        return None
    if state == RUNNING or (run_dir.exists() and held_by_other(run_dir)):
        _say(f"{tag}: running in another process (it holds the run's lock), skipped")
        return None
    if (run_dir / "checkpoints" / "last.pt").is_file():
        _say(f"{tag}: resuming ({state})")
        return True
    moved = _set_aside(run_dir)
    _say(f"{tag}: starting" + (f" (old directory kept as {moved.name})" if moved else ""))
    return False


def point_overrides(point: SweepPoint, extra_overrides: Sequence[str] = ()) -> list[str]:
    """What train_fn receives: extra overrides, then the point's (which win), then its name."""
    return list(extra_overrides) + list(point.overrides) + [f"name='{point.name}'"]


def run_sweep(base_config_path: str | Path, grid: Sequence[str], seeds: Sequence[int] | None,
              sweep_dir: str | Path, train_fn: TrainFn, extra_overrides: Sequence[str] = (),
              check_config: bool = True, grid_file: str | Path | None = None,
              executor: Executor | None = None) -> SweepResult:
    """Train every point of `plan_sweep(...)` into sweep_dir/<point name>/.

    train_fn(config_path: str, overrides: list[str], run_dir: Path, resume: bool) trains one
    run (overrides = extra_overrides, then the point's grid values and seed, then
    name='<point name>'). Per point, by the state of its run directory:
      finished                                    skipped
      has checkpoints/last.pt, not finished       resumed (resume=True)
      running with a live pid on this host        skipped (another process trains it)
      anything else                               fresh; an old directory without a
                                                  checkpoint is kept as <name>.attemptN
    Writes sweep_dir/sweep.json (the plan) first. With check_config, every point's config
    is resolved (lowres.config.load) before anything trains, so a bad value fails in
    seconds, not after hours. A Ctrl-C (KeyboardInterrupt) stops the sweep (rerun to
    continue); a LowresError from train_fn (bad data, bad config) stops it too; any other
    exception fails that point only (traceback printed) and the sweep goes on. A point whose
    train_fn returns with the run "stopped (resumable)" (the trainer caught SIGINT/SIGTERM
    and saved last.pt) ends the sweep there: the result's `stopped_at` names it and nothing
    is compared. Otherwise the runs are compared into sweep_dir/comparison/ (grouped by seed
    when seeds are given), and a LowresError names the points that failed, if any.
    `executor` (sweep.parallel.run_local, sweep.on_ray.run_on_ray) trains the points instead
    of train_fn, several at a time, each through `prepare_point` as above.
    """
    from lowres.track.compare import compare_runs

    base_config_path = Path(base_config_path)
    sweep_dir = Path(sweep_dir)
    points = plan_sweep(base_config_path, grid, seeds, grid_file)
    if check_config:
        for p in points:
            _check_point(base_config_path, p, point_overrides(p, extra_overrides))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _write_plan(sweep_dir, base_config_path, grid, grid_file, seeds, extra_overrides, points)

    jobs = [(f"[{i}/{len(points)}] {p.name}", p, point_overrides(p, extra_overrides))
            for i, p in enumerate(points, 1)]
    if executor is not None:  # --parallel / --ray: the same points, several at a time
        failed, stopped_at = executor(base_config_path, sweep_dir, jobs)
        if stopped_at is not None:
            return SweepResult(sweep_dir, stopped_at=stopped_at)
    else:
        failed = []
        for tag, point, overrides in jobs:
            run_dir = sweep_dir / point.name
            resume = prepare_point(run_dir, tag)
            if resume is None:
                continue
            try:
                train_fn(str(base_config_path), overrides, run_dir, resume)
            except KeyboardInterrupt:
                _say(f"{tag}: interrupted; rerun the same command to resume the sweep")
                raise
            except RunLocked as exc:  # another sweep process took this point just now
                _say(f"{tag}: {exc}; skipped")
                continue
            except LowresError:
                raise
            except Exception:  # noqa: BLE001 - one bad point must not end an overnight sweep
                traceback.print_exc()
                _say(f"{tag}: failed (traceback above); going on with the next point")
                failed.append(point.name)
                continue
            after = run_state(run_dir)
            if after == RESUMABLE:
                _say(f"{tag}: stopped before the end; rerun the same command to resume the sweep")
                return SweepResult(sweep_dir, stopped_at=point.name)
            if after != FINISHED:
                failed.append(point.name)
                _say(f"{tag}: ended as '{after}'")

    done = [sweep_dir / p.name for p in points if (sweep_dir / p.name / "config.yaml").is_file()]
    if done:
        report = compare_runs(done, sweep_dir / "comparison", group_seeds=bool(seeds))
        _say(f"comparison: {report}")
    if failed:
        raise LowresError(f"sweep {sweep_dir}: {len(failed)} point(s) did not finish: "
                          f"{', '.join(failed)} (see their run directories; rerun to retry)")
    return SweepResult(sweep_dir)


def _write_plan(sweep_dir: Path, base_config_path: Path, grid: Sequence[str],
                grid_file: str | Path | None, seeds: Sequence[int] | None, extra_overrides: Sequence[str],
                points: list[SweepPoint]) -> None:
    path = sweep_dir / "sweep.json"
    created = now_iso()
    try:
        created = json.loads(path.read_text()).get("created", created)
    except (OSError, ValueError, AttributeError):
        pass
    plan = {
        "base_config": str(base_config_path.resolve()),
        "grid": list(grid),
        "grid_file": str(Path(grid_file).resolve()) if grid_file is not None else None,
        "seeds": list(seeds) if seeds is not None else None,
        "extra_overrides": list(extra_overrides),
        "created": created,
        "updated": now_iso(),
        "points": [{**asdict(p), "run_dir": p.name,
                    "train_overrides": point_overrides(p, extra_overrides)} for p in points],
    }
    replace_text(path, json.dumps(plan, indent=1, default=str) + "\n")
    try:
        text = base_config_path.read_text()
    except OSError:
        return
    replace_text(sweep_dir / "base_config.yaml", text)
