"""`lowres compare RUN...`: overlaid curves, a results table and the config keys that differ.

Writes into out_dir:
  compare_loss.png, compare_accuracy.png, compare_lr.png   one colour per run (per group,
                    as a mean line with a min-max band over seeds, with group_seeds)
  comparison.md     results table (val accuracies with Wilson 95% intervals), differing
                    config keys, paired tests, seed groups (when asked)
  report.html       the same sections, self-contained (images embedded)

Each section is built once (`Section`) and rendered twice, by templates/comparison.md and
templates/comparison.html.

Paired tests (track/paired.py): runs scored on the same val images are compared with
McNemar's exact test at best.pt and at the last epoch.

Seed groups (`group_seeds=True`): runs whose configs are equal once `seed` and `name` are
left out form one group; each group gets mean and sample standard deviation of its runs'
best.pt val accuracy and the t-interval of that mean, every pair of groups gets a one-line
verdict (see SPREAD_RULE) and a paired test pooled over the val splits they share.
"""
from __future__ import annotations

import statistics
from itertools import combinations
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lowres.basics.disk import replace_text
from lowres.basics.durations import format_duration
from lowres.errors import LowresError
from lowres.basics.intervals import fmt_interval_pct, mean_interval
from lowres.track.configdiff import (differing_keys, flatten_config, group_names, seed_groups,
                                     value_text)
from lowres.track.overlay import overlay_plot
from lowres.track.paired import HEADER as PAIRED_HEADER
from lowres.track.paired import RULE as PAIRED_RULE
from lowres.track.paired import group_pairs, run_pairs
from lowres.track.report import embedded_images, render
from lowres.run.read import RunData, load_run
from lowres.run.log import now_iso
from lowres.run.listing import find_run_dirs

SPREAD_RULE = ("rule: two groups are called distinguishable only when the difference of their "
               "mean best val accuracies is larger than the spread, the larger of their two "
               "sample standard deviations over seeds; this is a coarse check, not a "
               "significance test, and a group with one seed has no spread to judge by")

WIDE_RUNS = 6  # above this many runs, the config-diff table lists one row per run

RESULTS_NOTE = ("accuracies in percent, with the Wilson 95% interval for the run's val split "
                "size in brackets (older runs without a recorded size: none); best val is the "
                "val accuracy of the weights in best.pt; wall time h:mm:ss; images/s: median "
                "over epochs")


def spread_verdict(mean_a: float, std_a: float | None, mean_b: float, std_b: float | None) -> str:
    """'difference 0.40% < spread 0.90%: not distinguishable with these seeds' (see SPREAD_RULE)."""
    diff = abs(mean_a - mean_b)
    if std_a is None or std_b is None:
        return (f"difference {diff:.2f}%, no spread (a group has one seed): "
                "cannot tell with these seeds")
    spread = max(std_a, std_b)
    if diff <= spread:
        return (f"difference {diff:.2f}% <= spread {spread:.2f}%: "
                "not distinguishable with these seeds")
    return f"difference {diff:.2f}% > spread {spread:.2f}%: larger than the seed spread"


# --------------------------------------------------------------------------- runs


def resolve_run_dirs(run_dirs: Sequence[str | Path]) -> list[Path]:
    """Each argument is a run directory, or a directory holding runs (a sweep): expanded."""
    unique: dict[Path, Path] = {}  # a run named twice (or inside a named sweep) counts once
    for arg in run_dirs:
        path = Path(arg)
        found = find_run_dirs(path)  # [path] itself when it holds a config.yaml
        if not found:
            what = "no such directory" if not path.exists() else "no config.yaml in it or below"
            raise LowresError(f"not a run directory: {path} ({what}; `lowres runs` lists runs)")
        for p in found:
            unique.setdefault(p.resolve(), p)
    if not unique:
        raise LowresError("nothing to compare: pass run directories (see `lowres runs`)")
    return list(unique.values())


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Short unique labels: directory names, or longer path tails where names repeat."""
    parts = [p.resolve().parts for p in paths]
    depth = [1] * len(parts)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth)]
        grow = [i for i, lab in enumerate(labels)
                if labels.count(lab) > 1 and depth[i] < len(parts[i])]
        if not grow:
            return labels
        for i in grow:
            depth[i] += 1


# --------------------------------------------------------------------------- sections


@dataclass
class Section:
    """One heading of the comparison, rendered to Markdown and to HTML alike."""

    heading: str
    note: str = ""  # a line under the heading
    header: list[str] | None = None  # a table, when there is one
    rows: list[list[Any]] = field(default_factory=list)
    empty: str = ""  # what to say instead of the table when there is none
    bullets: list[str] = field(default_factory=list)


def _results(runs: Sequence[RunData], labels: Sequence[str]) -> Section:
    header = ["run", "best.pt val (95%)", "epoch of best.pt", "final val (95%)", "epochs",
              "wall time", "images/s", "status", "val images"]
    rows = []
    for run, label in zip(runs, labels):
        best, best_epoch, _rule = run.checkpoint_best()
        ips = run.median("images_per_s")
        rows.append([label, run.fmt_acc(best), best_epoch if best_epoch is not None else "-",
                     run.fmt_acc(run.last("val_acc")), run.epochs_done,
                     format_duration(run.wall_seconds, clock=True),
                     f"{ips:.0f}" if ips is not None else "-", run.state, run.val_images or "-"])
    return Section("Results", RESULTS_NOTE, header, rows)


def _config_diff(configs: Sequence[dict], columns: Sequence[str], ignore_keys: Sequence[str],
                 seeds: Sequence[str] = ()) -> Section:
    """One column per config (a run, or a seed group with its seeds in a last row); more
    than WIDE_RUNS runs get one row per run instead."""
    keys = differing_keys(configs, ignore=ignore_keys)
    flats = [flatten_config(c) for c in configs]
    header = ["config key", *columns]
    rows = [[key] + [value_text(flat, key) for flat in flats] for key in keys]
    if seeds:
        rows.append(["seed", *seeds])
    elif len(configs) > WIDE_RUNS and keys:
        header = ["run", *keys]
        rows = [[label] + [value_text(flat, key) for key in keys]
                for label, flat in zip(columns, flats)]
    ignoring = f" (ignoring {', '.join(ignore_keys)})" if ignore_keys else ""
    return Section("Config keys that differ", header=header if rows else None, rows=rows,
                   empty=f"none: the configs do not differ{ignoring}")


def _seed_sections(runs: Sequence[RunData], paths: Sequence[Path], groups: list[list[int]],
                   names: Sequence[str], seeds: Sequence[str]) -> list[Section]:
    """Mean and spread of best val accuracy per group; verdicts and paired tests per pair."""
    header = ["group", "runs", "seeds", "best val mean", "best val std", "mean ± std",
              "mean, 95% interval (t over seeds)"]
    rows, stats = [], []
    for name, members, group_seeds in zip(names, groups, seeds):
        # In percentage points, as shown: the verdicts compare these numbers.
        values = [100 * v for v in (runs[i].checkpoint_best()[0] for i in members)
                  if v is not None]
        mean = statistics.fmean(values) if values else None
        std = statistics.stdev(values) if len(values) > 1 else None
        stats.append((mean, std))
        ms = "-" if mean is None else (f"{mean:.2f}% ± {std:.2f}%" if std is not None
                                      else f"{mean:.2f}% (one seed)")
        interval = mean_interval(values)
        # An accuracy's interval is clipped to 0-100: with two seeds t(1) = 12.7 and
        # the bare mean +- t * sd / sqrt(n) easily leaves the possible range.
        ci = (f"{interval[0]:.2f}% {fmt_interval_pct(max(interval[1], 0.0), min(interval[2], 100.0))}"
              if interval else "- (needs 2 seeds)")
        rows.append([name, len(values), group_seeds, _points(mean), _points(std), ms, ci])
    verdicts = [f"{names[a]} vs {names[b]}: " + spread_verdict(*stats[a], *stats[b])
                for a, b in combinations(range(len(groups)), 2)
                if stats[a][0] is not None and stats[b][0] is not None]
    paired_rows, paired_lines = group_pairs(paths, groups, names)
    nothing = ["only one group: nothing to compare"]
    return [Section("Seed groups", "best val accuracy over the seeds of each group; std is the "
                    "sample standard deviation (n-1)", header, rows),
            Section("Are the groups distinguishable?", SPREAD_RULE, bullets=verdicts or nothing),
            Section("Paired tests over shared val splits", PAIRED_RULE,
                    PAIRED_HEADER if paired_rows else None, paired_rows,
                    bullets=paired_lines or nothing)]


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def compare_runs(run_dirs: Sequence[str | Path], out_dir: str | Path, group_seeds: bool = False,
                 ignore_keys: Sequence[str] = ("name",)) -> Path:
    """Compare runs; write plots, comparison.md and report.html into out_dir; return report.html.

    run_dirs: run directories, or directories holding runs (expanded recursively).
    Results table: best val acc, its epoch, final val acc, epochs, wall time (last
    `elapsed`), median images/s, status. Differing keys: the configs flattened to dotted
    keys (`stages.0.optimizer.lr`), keys whose values are not all equal (`ignore_keys` left
    out). group_seeds: see the module docstring. Raises LowresError for a path with no run.
    """
    paths = resolve_run_dirs(run_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [load_run(p) for p in paths]
    labels = run_labels(paths)
    configs = [r.config for r in runs]
    sections = [Section("Runs", header=["run", "directory"],
                        rows=[[lab, str(p)] for lab, p in zip(labels, paths)]),
                _results(runs, labels)]
    if group_seeds:
        groups = seed_groups(configs)
        names = group_names(configs, groups)
        curves = [(f"{n} ({len(g)} run{'s' if len(g) != 1 else ''})", [runs[i] for i in g])
                  for n, g in zip(names, groups)]
        # The config diff has a column per group, not per run; long names would widen
        # every column.
        columns = names if all(len(n) <= 40 for n in names) else [
            f"group {i + 1}" for i in range(len(groups))]
        seeds = [", ".join(str(configs[i].get("seed", "?")) for i in g) for g in groups]
        sections.append(_config_diff([configs[g[0]] for g in groups], columns,
                                     (*ignore_keys, "seed"), seeds))
        sections += _seed_sections(runs, paths, groups, names, seeds)
    else:
        curves = [(label, [run]) for label, run in zip(labels, runs)]
        sections.append(_config_diff(configs, labels, ignore_keys))
        pair_rows, pair_notes = run_pairs(paths, labels)
        sections.append(Section("Paired tests (same val images)", PAIRED_RULE,
                                PAIRED_HEADER if pair_rows else None, pair_rows,
                                empty="no two runs share a val split", bullets=pair_notes))
    images = []
    for kind in ("loss", "accuracy", "lr"):
        img = overlay_plot(curves, kind, out_dir / f"compare_{kind}.png", group_seeds)
        if img is not None:
            images.append(img)
    title = f"Comparison of {len(runs)} runs"
    written = now_iso()
    markdown = render("comparison.md", title=title, written=written, sections=sections,
                      images=images)
    replace_text(out_dir / "comparison.md", markdown.rstrip("\n") + "\n")
    path = out_dir / "report.html"
    replace_text(path, render("comparison.html", title=title, written=written,
                              sections=sections, imgs=embedded_images(images),
                              group_seeds=group_seeds))
    return path
