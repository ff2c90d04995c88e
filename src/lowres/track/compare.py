"""`lowres compare RUN...`: overlaid curves, a results table and the config keys that differ.

Writes into out_dir:
  compare_loss.png, compare_accuracy.png, compare_lr.png   one colour per run (per group,
                    as a mean line with a min-max band over seeds, with group_seeds)
  comparison.md     results table (val accuracies with Wilson 95% intervals), differing
                    config keys, paired tests, seed groups (when asked)
  report.html       the same, self-contained (images embedded)

Paired tests (track/paired.py): runs scored on the same val images are compared with
McNemar's exact test at best.pt and at the last epoch.

Seed groups (`group_seeds=True`): runs whose configs are equal once `seed` and `name` are
left out form one group; each group gets mean and sample standard deviation of its runs'
best.pt val accuracy and the t-interval of that mean, every pair of groups gets a one-line
verdict (see SPREAD_RULE) and a paired test pooled over the val splits they share.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Sequence

from lowres.errors import LowresError
from lowres.intervals import fmt_interval_pct, mean_interval
from lowres.track.bands import band_plot
from lowres.track.paired import HEADER as PAIRED_HEADER
from lowres.track.paired import RULE as PAIRED_RULE
from lowres.track.paired import group_pairs, run_pairs
from lowres.track.plots import DPI, save_figure
from lowres.track.report import write_comparison_report
from lowres.track.rundata import RunData, fmt_duration, fmt_pct, load_run
from lowres.track.runlog import atomic_write_text, now_iso
from lowres.track.runs import find_run_dirs

SPREAD_RULE = ("rule: two groups are called distinguishable only when the difference of their "
               "mean best val accuracies is larger than the spread, the larger of their two "
               "sample standard deviations over seeds; this is a coarse check, not a "
               "significance test, and a group with one seed has no spread to judge by")

MISSING = "(absent)"

BAND_CAPTION = ("one colour per seed group: the line is the mean over the group's seeds at "
                "each epoch, the shaded band spans their minimum to maximum (val accuracy and "
                "val loss); dashed: train mean")

WIDE_RUNS = 6  # above this many runs, the config-diff table lists one row per run

RESULTS_NOTE = ("accuracies in percent, with the Wilson 95% interval for the run's val split "
                "size in brackets (older runs without a recorded size: none); best val is the "
                "val accuracy of the weights in best.pt; wall time h:mm:ss; images/s: median "
                "over epochs")


# --------------------------------------------------------------------------- configs


def flatten_config(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'stages': [{'optimizer': {'lr': 0.1}}]} -> {'stages.0.optimizer.lr': 0.1}.

    Mappings and lists are walked (list items by index); an empty mapping or list is a leaf.
    """
    out: dict[str, Any] = {}
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            out.update(flatten_config(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(tree, list) and tree:
        for i, value in enumerate(tree):
            out.update(flatten_config(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix] = tree
    return out


def differing_keys(configs: Sequence[dict], ignore: Sequence[str] = ("name",)) -> list[str]:
    """Dotted keys whose value is not the same in every config (absent counts as a value).

    Keys are in order of first appearance; keys in `ignore` (exact dotted keys) are skipped.
    """
    flats = [flatten_config(c) for c in configs]
    order: dict[str, None] = {}
    for flat in flats:
        for key in flat:
            order.setdefault(key, None)
    out = []
    for key in order:
        if key in ignore:
            continue
        values = [flat.get(key, MISSING) if key in flat else MISSING for flat in flats]
        first = values[0]
        if any(not _same(v, first) for v in values[1:]):
            out.append(key)
    return out


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 == True in Python; a config that changed a type did change.
    return type(a) is type(b) and a == b


def fmt_value(value: Any) -> str:
    if value is MISSING:
        return MISSING
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return str(value)


def seed_groups(configs: Sequence[dict], ignore: Sequence[str] = ("seed", "name")) -> list[list[int]]:
    """Indices of configs grouped by equality once the `ignore` keys are left out.

    Groups are in order of their first run; runs keep their order inside a group.
    """
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        flat = flatten_config(cfg)
        key = tuple(sorted((k, type(v).__name__, repr(v)) for k, v in flat.items()
                           if k not in ignore))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


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
    out: list[Path] = []
    for arg in run_dirs:
        path = Path(arg)
        if (path / "config.yaml").is_file():
            out.append(path)
            continue
        found = find_run_dirs(path) if path.is_dir() else []
        if not found:
            what = "no such directory" if not path.exists() else "no config.yaml in it or below"
            raise LowresError(f"not a run directory: {path} ({what}; `lowres runs` lists runs)")
        out.extend(found)
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if not unique:
        raise LowresError("nothing to compare: pass run directories (see `lowres runs`)")
    return unique


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


# --------------------------------------------------------------------------- plots


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _xy(run: RunData, ys: list[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(run.epochs, ys) if not math.isnan(x) and not math.isnan(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _y_at(run: RunData, ys: list[float], epoch: float) -> float | None:
    for x, y in zip(run.epochs, ys):
        if x == epoch and not math.isnan(y):
            return y
    return None


def _compare_plot(runs: Sequence[RunData], labels: Sequence[str], colors: Sequence, kind: str,
                  path: Path) -> Path | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.2), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fig.subplots_adjust(left=0.09, right=0.72, top=0.9, bottom=0.13)
    drew = False
    all_lr: list[float] = []
    for run, label, color in zip(runs, labels, colors):
        if kind == "loss":
            series = [(run.cols.get("train_loss", []), "--", None),
                      (run.cols.get("val_loss", []), "-", label)]
        elif kind == "accuracy":
            series = [(run.acc("train_acc"), "--", None), (run.acc("val_acc"), "-", label)]
        else:
            series = [(run.cols.get("lr", []), "-", label)]
        main = series[-1][0]
        for ys, style, lab in series:
            x, y = _xy(run, ys)
            if x:
                marker = "o" if len(x) <= 30 else None
                ax.plot(x, y, linestyle=style, color=color, label=lab, linewidth=1.3,
                        marker=marker, markersize=2.5, alpha=0.9 if style == "-" else 0.6)
                drew = True
                if kind == "lr":
                    all_lr += y
        for xb, _name in run.stage_boundaries():
            ax.axvline(xb, color=color, linestyle=(0, (4, 3)), linewidth=0.8, alpha=0.6)
        for epoch, _lr in run.lr_drops():
            y = _y_at(run, main, epoch)
            if y is not None:
                ax.plot([epoch], [y], marker="v", color=color, markersize=7, linestyle="none",
                        markeredgecolor="black", markeredgewidth=0.5)
    if not drew:
        return None
    if kind == "lr" and all_lr and min(all_lr) > 0:
        ax.set_yscale("log")
    titles = {"loss": ("loss (solid val, dashed train)", "loss"),
              "accuracy": ("accuracy (solid val, dashed train)", "accuracy (%)"),
              "lr": ("learning rate", "lr")}
    ax.set_title(titles[kind][0], fontsize=10, loc="left")
    ax.set_ylabel(titles[kind][1], fontsize=9)
    ax.set_xlabel("epoch", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.25)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- tables


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return mean, std


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
    groups = seed_groups(configs) if group_seeds else [[i] for i in range(len(runs))]

    colors_by_run: list = [None] * len(runs)
    if group_seeds:
        palette = _colors(len(groups))
        for g, members in enumerate(groups):
            for i in members:
                colors_by_run[i] = palette[g]
    else:
        colors_by_run = _colors(len(runs))

    group_names = _group_names(configs, groups) if group_seeds else []
    images = []
    for kind in ("loss", "accuracy", "lr"):
        path = out_dir / f"compare_{kind}.png"
        if group_seeds:  # one mean curve and min-max band per group (track/bands.py)
            img = band_plot([[runs[i] for i in g] for g in groups], group_names,
                            _colors(len(groups)), kind, path)
        else:
            img = _compare_plot(runs, labels, colors_by_run, kind, path)
        if img is not None:
            images.append(img)

    # results
    res_header = ["run", "best.pt val (95%)", "epoch of best.pt", "final val (95%)", "epochs",
                  "wall time", "images/s", "status", "val images"]
    res_rows = []
    for run, label in zip(runs, labels):
        best, best_epoch, _rule = run.checkpoint_best()
        ips = run.median("images_per_s")
        res_rows.append([label, run.fmt_acc(best), best_epoch if best_epoch is not None else "-",
                         run.fmt_acc(run.last("val_acc", percent=True)), run.epochs_done,
                         fmt_duration(run.wall_seconds), f"{ips:.0f}" if ips is not None else "-",
                         run.state, run.val_images or "-"])

    # differing config keys: one column per run, per seed group, or (many runs) one row per run
    if group_seeds:
        diff_header, diff_rows = _group_diff_table(configs, groups, group_names, ignore_keys)
        diff = [row[0] for row in diff_rows]
    else:
        diff = differing_keys(configs, ignore=ignore_keys)
        flats = [flatten_config(c) for c in configs]
        diff_header = ["config key"] + labels
        diff_rows = [[key] + [fmt_value(f[key]) if key in f else MISSING for f in flats]
                     for key in diff]
        if len(runs) > WIDE_RUNS and diff:
            diff_header = ["run"] + diff
            diff_rows = [[label] + [fmt_value(f[key]) if key in f else MISSING for key in diff]
                         for label, f in zip(labels, flats)]

    tables: list[tuple[str, list[str], list[list[Any]]]] = [("Results", res_header, res_rows)]
    notes: list[str] = []
    md = [f"# Comparison of {len(runs)} runs", "", f"written {now_iso()}", "",
          "## Runs", "", _md_table(["run", "directory"],
                                   [[lab, str(p)] for lab, p in zip(labels, paths)]),
          "", "## Results", "", RESULTS_NOTE, "", _md_table(res_header, res_rows), "",
          "## Config keys that differ", ""]
    if diff:
        md.append(_md_table(diff_header, diff_rows))
        tables.append(("Config keys that differ", diff_header, diff_rows))
    else:
        md.append("none" + (f" (ignoring {', '.join(ignore_keys)})" if ignore_keys else ""))
        notes.append("the configs do not differ" + (f" (ignoring {', '.join(ignore_keys)})"
                                                    if ignore_keys else ""))
    md.append("")

    if not group_seeds:
        pair_rows, pair_notes = run_pairs(paths, labels)
        md += ["## Paired tests (same val images)", "", PAIRED_RULE, ""]
        md += [_md_table(PAIRED_HEADER, pair_rows) if pair_rows
               else "no two runs share a val split", ""] + [f"- {n}" for n in pair_notes]
        md.append("")
        if pair_rows:
            tables.append(("Paired tests (same val images, McNemar exact)", PAIRED_HEADER,
                           pair_rows))
        notes += [PAIRED_RULE] + pair_notes

    if group_seeds:
        g_header = ["group", "runs", "seeds", "best val mean", "best val std", "mean ± std",
                    "mean, 95% interval (t over seeds)"]
        g_rows, stats = [], []
        for name, members in zip(group_names, groups):
            values = [v for v in (runs[i].checkpoint_best()[0] for i in members) if v is not None]
            mean, std = _mean_std(values)
            stats.append((mean, std))
            seeds = ", ".join(str(configs[i].get("seed", "?")) for i in members)
            ms = "-" if mean is None else (f"{mean:.2f}% ± {std:.2f}%" if std is not None
                                          else f"{mean:.2f}% (one seed)")
            interval = mean_interval(values)
            # An accuracy's interval is clipped to 0-100: with two seeds t(1) = 12.7 and
            # the bare mean +- t * sd / sqrt(n) easily leaves the possible range.
            ci = (f"{interval[0]:.2f}% "
                  f"{fmt_interval_pct(max(interval[1], 0.0), min(interval[2], 100.0))}"
                  if interval else "- (needs 2 seeds)")
            g_rows.append([name, len(values), seeds, fmt_pct(mean),
                           fmt_pct(std) if std is not None else "-", ms, ci])
        tables.append(("Seed groups (best val accuracy over seeds, sample std)", g_header,
                       g_rows))
        md += ["## Seed groups", "", "best val accuracy over the seeds of each group; std is "
               "the sample standard deviation (n-1)", "", _md_table(g_header, g_rows), ""]
        pair_lines = []
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                (ma, sa), (mb, sb) = stats[a], stats[b]
                if ma is None or mb is None:
                    continue
                pair_lines.append(f"{group_names[a]} vs {group_names[b]}: "
                                  + spread_verdict(ma, sa, mb, sb))
        md += ["## Are the groups distinguishable?", "", SPREAD_RULE, ""]
        md += [f"- {line}" for line in pair_lines] or ["- only one group: nothing to compare"]
        md.append("")
        notes.append(SPREAD_RULE)
        notes += pair_lines
        paired_rows, paired_lines = group_pairs(paths, groups, group_names)
        md += ["## Paired tests over shared val splits", "", PAIRED_RULE, ""]
        md += [f"- {line}" for line in paired_lines] or ["- only one group: nothing to compare"]
        md.append("")
        if paired_rows:
            tables.append(("Paired tests over shared val splits (McNemar exact, pooled)",
                           PAIRED_HEADER, paired_rows))
        notes += [PAIRED_RULE] + paired_lines

    if images:
        md += ["## Curves", ""] + [f"![{p.stem}]({p.name})" for p in images] + [""]
    atomic_write_text(out_dir / "comparison.md", "\n".join(md))
    return write_comparison_report(out_dir, f"Comparison of {len(runs)} runs", images, tables,
                                   notes, runs=[(lab, str(p)) for lab, p in zip(labels, paths)],
                                   caption=BAND_CAPTION if group_seeds else None)


def _group_names(configs: Sequence[dict], groups: list[list[int]]) -> list[str]:
    """A group is named by its values of the keys that differ between groups."""
    if len(groups) == 1:
        return ["all runs"]
    reps = [configs[g[0]] for g in groups]
    keys = differing_keys(reps, ignore=("seed", "name"))
    flats = [flatten_config(c) for c in reps]
    names = []
    for flat in flats:
        names.append(", ".join(f"{k}={fmt_value(flat[k]) if k in flat else MISSING}"
                               for k in keys) or "all runs")
    return names


def _group_diff_table(configs: Sequence[dict], groups: list[list[int]], names: Sequence[str],
                      ignore_keys: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """Config keys that differ between groups: one column per group (its seeds in a row),
    so the table stays as wide as the number of configs, not of runs."""
    reps = [configs[g[0]] for g in groups]
    keys = differing_keys(reps, ignore=tuple(ignore_keys) + ("seed",))
    flats = [flatten_config(c) for c in reps]
    short = all(len(n) <= 40 for n in names)  # long names would widen every column
    header = ["config key"] + (list(names) if short else
                               [f"group {i + 1}" for i in range(len(groups))])
    rows = [[key] + [fmt_value(f[key]) if key in f else MISSING for f in flats] for key in keys]
    rows.append(["seed"] + [", ".join(str(configs[i].get("seed", "?")) for i in g)
                            for g in groups])
    return header, rows
