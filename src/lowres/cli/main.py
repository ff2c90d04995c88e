"""The command line: parse, then call one function per subcommand.

Every `LowresError` (bad data, config, arguments) becomes one line on stderr and exit
code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lowres.errors import LowresError

EPILOG = """examples:
  lowres demo                                   the whole flow on generated data (~2 min, CPU)
  lowres stats DATA                             sizes, counts per class, exact mean/std
  lowres train configs/seed/final.yaml data.root=DATA --dry-run
  lowres train configs/seed/final.yaml data.root=DATA stages.0.epochs=3 --time-limit 11h30m
  lowres train --resume runs/final-20261129-120000
  lowres options stages.N.scheduler             every scheduler key, its default and choices
  lowres predict runs/a runs/b --data DATA --tta flip --out submission.csv
  lowres compare runs/a runs/b --out comparison/
  lowres export runs/a --format onnx            uint8 images in, probabilities out
docs: README.md, ARCHITECTURE.md, configs/README.md"""


def _cmd_demo(args) -> int:
    from lowres.cli.demo import run_demo

    run_demo(args.out)
    return 0


def _cmd_stats(args) -> int:
    from lowres.cli.stats import dataset_stats, print_stats

    print_stats(dataset_stats(args.data, args.cache_dir))
    return 0


def _cmd_train(args) -> int:
    from lowres.basics.durations import parse_duration
    from lowres.train.loop import train

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).exists():
        overrides.insert(0, config)  # `lowres train --resume RUN key=value`: no config file
        config = None
    if args.resume and config is not None:
        raise LowresError(f"--resume continues {args.resume} with its own config.yaml: drop "
                          f"{config} (key=value overrides are still allowed)")
    time_limit = parse_duration(args.time_limit) if args.time_limit else None
    if args.budget:
        overrides.append(f"train.budget={args.budget}")
    if args.devices is not None and args.devices != 1 and not args.dry_run:
        from lowres.train.launch import train_on_devices

        state, _ = train_on_devices(args.devices, config, overrides, run_dir=args.run_dir,
                                    resume=args.resume, time_limit=time_limit,
                                    pause_after_epochs=args.pause_after)
        return 0 if state is None or state == "finished" or state.startswith("stopped") else 1
    result = train(config, overrides, run_dir=args.run_dir, resume=args.resume,
                   time_limit=time_limit, pause_after_epochs=args.pause_after, dry_run=args.dry_run)
    return 0 if result is None or result.state in ("finished", "stopped") else 1


def _cmd_predict(args) -> int:
    from lowres.predict.predictions import predict

    from lowres.predict.tta import tta_setting

    tta = tta_setting(args.tta, args.tta_views, args.tta_beta)
    predict(args.runs, args.data, tta=tta, out=args.out, which=args.checkpoint,
            device=args.device, cache_dir=args.cache_dir)
    return 0


def _cmd_evaluate(args) -> int:
    from lowres.predict.predictions import evaluate

    from lowres.predict.tta import tta_setting

    tta = tta_setting(args.tta, args.tta_views, args.tta_beta)
    evaluate(args.run, args.data, which=args.checkpoint, tta=tta, device=args.device,
             out_dir=args.out, top_losses=args.top_losses)
    return 0


def _tta_arguments(p) -> None:
    """--tta, --tta-views, --tta-beta of predict and evaluate (modes: lowres.predict.tta)."""
    p.add_argument("--tta", default="auto", choices=["auto", "none", "flip", "aug", "aug+flip"],
                   help="test-time augmentation. auto (the default): aug when the run's last "
                        "stage has augmentation, else none; aug: N views drawn from the run's "
                        "own last-stage augmentation (without mixup/cutmix/erasing), blended "
                        "with the plain image; aug+flip: the same, the plain part with its "
                        "horizontal flip; flip: the image and its horizontal flip; none")
    p.add_argument("--tta-views", type=int, metavar="N",
                   help="augmented views per image for auto/aug/aug+flip (default 4)")
    p.add_argument("--tta-beta", type=float, metavar="W",
                   help="weight of the plain view in the blend, 0..1 (default 0.25, as fastai)")


def _cmd_export(args) -> int:
    from lowres.predict.export import export

    export(args.run, args.format, which=args.checkpoint, out=args.out)
    return 0


def _cmd_models(args) -> int:
    from lowres.models import describe_models

    if args.timm is not None:
        return _list_timm_models(args)
    rows = describe_models(size=args.size, num_classes=args.classes)
    print(f"{'model':<18} {'params':>12} {'GFLOPs':>9}  (at {args.size}x{args.size}, "
          f"{args.classes} classes, one image, multiply-add = 2 FLOPs)")
    for row in rows:
        print(f"{row['name']:<18} {row['params'] / 1e6:>11.2f}M {row['gflops']:>9.3f}  {row['summary']}")
    return 0


def _list_timm_models(args) -> int:
    from lowres.basics.checks import one_of
    from lowres.models.zoo import describe_timm

    one_of("lowres.models.stems:STEMS")("model.stem", args.stem)  # --stem: model.stem's names

    if args.data:  # the dataset's own image size (decoded once into the cache, as for training)
        from lowres.cli.stats import dataset_stats

        args.size = dataset_stats(args.data)["image_size"][1]

    print(f"{'model':<34} {'params':>10} {'GFLOPs':>8}  after stem  (at {args.size}x{args.size}, "
          f"{args.classes} classes, stem {args.stem}; model.name=timm:<name>)")
    shown = 0
    for row in describe_timm(None if args.timm == "*" else args.timm, args.size, args.classes, args.stem):
        shown += 1
        if "error" in row:
            print(f"{row['name']:<34} {'-':>10} {'-':>8}  not buildable here: {row['error']}", flush=True)
        else:
            print(f"{row['name']:<34} {row['params'] / 1e6:>9.2f}M {row['gflops']:>8.3f}  "
                  f"{row['stem_grid']}", flush=True)
    if not shown:
        print(f"no timm model matches '{args.timm}' (patterns use * as in 'resnet*')")
    return 0


def _cmd_runs(args) -> int:
    from lowres.run.listing import format_runs_table, list_runs

    rows = list_runs(args.dir)
    if not rows:
        print(f"no runs under {args.dir}/ (train one with `lowres train CONFIG`)")
        return 0
    print(format_runs_table(rows))
    return 0


def _cmd_compare(args) -> int:
    from lowres.track.compare import compare_runs

    out = compare_runs(args.runs, args.out, group_seeds=args.group_seeds)
    print(f"lowres: comparison written to {out}")
    return 0


def _cmd_sweep(args) -> int:
    from lowres.sweep.points import run_sweep
    from lowres.train.loop import train

    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None

    def train_fn(config_path, overrides, run_dir, resume):
        if resume:
            return train(None, overrides=[], resume=run_dir)
        return train(config_path, overrides, run_dir=run_dir)

    executor = None
    if args.ray is not None:
        from lowres.sweep.on_ray import run_on_ray

        executor = run_on_ray(args.ray or None, args.per_gpu)
    elif args.parallel is not None or args.per_gpu != 1 or _gpu_count() > 1:
        from lowres.sweep.parallel import run_local

        executor = run_local(args.parallel, args.per_gpu)
    result = run_sweep(args.config, args.grid, seeds, args.out, train_fn,
                       extra_overrides=args.overrides, grid_file=args.grid_file, executor=executor)
    if result.stopped_at is not None:  # the trainer caught a signal: same exit as a Ctrl-C
        print(f"lowres: sweep stopped at {result.stopped_at}; rerun the same command to "
              "resume", file=sys.stderr)
        return 130
    print(f"lowres: sweep finished in {result.sweep_dir}")
    return 0


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _cmd_tune(args) -> int:
    from lowres.tune import run_tune

    if args.ray is not None:
        from lowres.tune.on_ray import check_ray_args, run_tune_on_ray

        check_ray_args(args.parallel)
        result = run_tune_on_ray(args.ray or None, args.config, args.space, args.trials, args.out,
                                 args.overrides, storage=args.storage, study_name=args.study_name,
                                 pruner=args.pruner, per_gpu=args.per_gpu, seed=args.seed,
                                 grace_epochs=args.grace_epochs)
    else:
        result = run_tune(args.config, args.space, args.trials, args.out, args.overrides,
                          storage=args.storage, study_name=args.study_name, pruner=args.pruner,
                          parallel=args.parallel, per_gpu=args.per_gpu, seed=args.seed,
                          grace_epochs=args.grace_epochs, worker=args.worker)
    if result.stopped:
        print("lowres: search stopped; rerun the same command to resume its trials",
              file=sys.stderr)
        return 130
    if result.best is not None:
        print(f"lowres: best {result.best['name']} val acc {result.best['value']:.4f}; "
              f"config {result.best_config}")
    if result.report is not None:
        print(f"lowres: search report {result.report}")
    return 0


def _cmd_lr_find(args) -> int:
    from lowres.train.lr_find import find_lr

    given = {k: v for k, v in (("start", args.start), ("end", args.end), ("steps", args.steps))
             if v is not None}  # the defaults live in train/lr_find.py (torch: imported late)
    find_lr(args.config, list(args.overrides), plot=args.out, **given)
    return 0


def _cmd_options(args) -> int:
    from lowres.cli.options import option_lines

    print("\n".join(option_lines(args.section)))
    return 0


def _cmd_augment_preview(args) -> int:
    from lowres.cli.augment_preview import augment_preview

    augment_preview(args.config, args.overrides, args.out, stage=args.stage, n=args.n,
                    draws=args.draws)
    return 0


class _Version(argparse.Action):
    """`lowres --version`: the installed version, read only when asked (importlib.metadata
    is not free, and every command builds the parser)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from lowres.run.environment import lowres_version

        print(f"lowres {lowres_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lowres", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Train image classifiers from scratch on small, low-resolution images and "
                    "write competition submissions.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name, func, help_text, description=None):
        p = sub.add_parser(name, help=help_text, description=description or help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("demo", _cmd_demo, "make a demo dataset, train a small model, predict, plot",
            "Generate a 10-class 40x40 dataset in the competition layout, train a small model "
            "with a short 3-stage plan, write a submission and a report, and print where "
            "everything is. About 2 minutes on 2 CPU cores.")
    p.add_argument("--out", default="demo", help="directory for the data, run and submission "
                                                 "(default: demo/)")

    p = add("stats", _cmd_stats, "image size, counts per class, exact per-channel mean/std")
    p.add_argument("data", help="dataset directory (competition layout or class folders)")
    p.add_argument("--cache-dir", help="decoded-image cache (default: ~/.cache/lowres or "
                                       "$LOWRES_CACHE_DIR)")

    p = add("train", _cmd_train, "train a model from a config (or resume a run)",
            "Train from CONFIG.yaml with dotted key=value overrides (list items by index: "
            "stages.0.epochs=3; every key: lowres options). Ctrl-C, SIGTERM or --time-limit "
            "save a checkpoint and print the resume command.")
    p.add_argument("config", nargs="?", help="YAML config (only data.root is required)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.batch_size=128 model.name=resnet18")
    p.add_argument("--run-dir", help="where the run goes (default: runs/<name>-<time>); with "
                   "--resume, a new folder where a copy of the run goes on (for a read-only run)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run exactly where its "
                                                      "last checkpoint left off")
    p.add_argument("--time-limit", metavar="DURATION", help="stop cleanly after this long (e.g. "
                   "11h30m for a 12-hour session), saving a resumable checkpoint")
    p.add_argument("--budget", metavar="DURATION", help="fit the whole plan in this much time (e.g. "
                   "5m): every stage's epochs are scaled, keeping their proportions, so the "
                   "schedules and the last stage finish (train.budget; unlike --time-limit, "
                   "which pauses the plan where the clock stops it)")
    p.add_argument("--pause-after", type=int, metavar="EPOCHS", help="stop cleanly after this many "
                   "epochs of this session (resume later with --resume)")
    p.add_argument("--devices", type=int, metavar="N", help="train on N GPUs (or N CPU processes) "
                   "with DistributedDataParallel, started here (as torchrun would; works from a "
                   "notebook too); default: one process")
    p.add_argument("--dry-run", action="store_true", help="validate config and data, build the "
                   "model, run one batch forward and backward, print the plan, write nothing")

    p = add("lr-find", _cmd_lr_find, "an LR range test: which learning rate to train with",
            "Train a fresh copy of the config's model on its first stage (data, augmentation, "
            "optimizer) for --steps steps with the LR growing exponentially from --start to "
            "--end, smooth the loss, and print the suggested LR (the valley rule: halfway "
            "along the longest descent of the smoothed loss) with a plot. Writes no run "
            "directory. `optimizer.lr: find` in a stage runs the same test at its start.")
    p.add_argument("config", help="YAML config")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--start", type=float, help="first LR (default 1e-06)")
    p.add_argument("--end", type=float, help="last LR (default 10)")
    p.add_argument("--steps", type=int, help="steps (batches) at most (default 100); it stops "
                                             "early when the smoothed loss diverges")
    p.add_argument("--out", default="lr_find.png", help="the plot (default: lr_find.png)")

    p = add("predict", _cmd_predict, "write a submission CSV (Id,Category) for the test images",
            "Predict every image in DATA/test/ (file-name order). Several runs form an ensemble "
            "(averaged probabilities).")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (several = ensemble)")
    p.add_argument("--data", required=True, help="dataset directory holding test/")
    _tta_arguments(p)
    p.add_argument("--out", default="submission.csv", help="output CSV (default: submission.csv)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="which checkpoint of each run: best.pt (chosen by the run's "
                        "train.checkpoint_rule; the default) or last.pt (the last epoch)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--cache-dir", help="decoded-image cache directory")

    p = add("evaluate", _cmd_evaluate, "accuracy, per-class accuracy and a confusion matrix",
            "Evaluate a run on its held-out val split (default) or on a labelled folder.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--data", help="labelled data: a dataset directory or <class>/ folders "
                                  "(default: the run's own val split)")
    _tta_arguments(p)
    p.add_argument("--top-losses", type=int, default=16, metavar="N",
                   help="images in the top-losses grid (default 16)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="output directory (default: RUN_DIR/evaluation)")

    p = add("export", _cmd_export, "write a run's model as ONNX or TorchScript for deployment",
            "Write a model that takes uint8 images [N, C, H, W] and returns class "
            "probabilities (normalisation inside), and beside it a JSON of the class names. "
            "ONNX needs pip install 'lowres[export]'.")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--out", help="output file (default: RUN_DIR/export/model.onnx or model.pt)")

    p = add("models", _cmd_models, "every model name with parameters and GFLOPs",
            "Every model of the zoo with parameters and GFLOPs; --timm [PATTERN] lists timm's "
            "models (optional extra: pip install 'lowres[timm]') adapted to the size, with the "
            "feature-map size after the stem.")
    p.add_argument("--timm", nargs="?", const="*", metavar="PATTERN",
                   help="list timm models matching PATTERN (e.g. 'resnet*', 'convnext_*')")
    p.add_argument("--stem", default="k4", help="stem the timm models are adapted with "
                                                "(default k4; the names of model.stem)")
    p.add_argument("--data", help="with --timm: take the input size from this dataset")
    p.add_argument("--size", type=int, default=40, help="input size (default 40)")
    p.add_argument("--classes", type=int, default=200, help="number of classes (default 200)")

    p = add("options", _cmd_options, "every config key: default, choices or range, meaning",
            "Every config key with its default, its choices or range and a one-line "
            "description, from the config schema. SECTION narrows the list: model, train, "
            "stages.N.scheduler, ...")
    p.add_argument("section", nargs="?", help="a section or key, e.g. model or stages.0.optimizer")

    p = add("runs", _cmd_runs, "a table of runs: status, best/last val accuracy, time")
    p.add_argument("dir", nargs="?", default="runs", help="directory to search (default: runs/)")

    p = add("compare", _cmd_compare, "overlay curves of runs; table of results and config diffs")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="comparison", help="output directory (default: comparison/)")
    p.add_argument("--group-seeds", action="store_true",
                   help="group runs that differ only in seed; report mean and spread")

    p = add("sweep", _cmd_sweep, "train a grid of configs (and seeds), then compare them",
            "Run the cartesian product of --grid values, one after another or several at a time "
            "(--parallel, --ray). Started again, it skips finished runs and resumes interrupted ones.")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every run")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a key and its values, read as a YAML flow list (repeatable): "
                        "'model.dropout=0.0,0.2' or 'model.dropout=[0.0,0.2]' (one bracketed list "
                        "is the values); a list-valued key takes a list of lists, e.g. "
                        "'stages.0.scheduler.milestones=[[10,20],[30]]'")
    p.add_argument("--grid-file", metavar="GRID.yaml",
                   help="a YAML file of dotted keys and lists of values, e.g. "
                        "'stages.0.optimizer.lr: [0.1, 0.05]'")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    p.add_argument("--out", default="sweeps/sweep", help="sweep directory (default: sweeps/sweep; "
                   "with --ray, a folder every node sees)")
    p.add_argument("--parallel", type=int, metavar="N", help="train N points at a time, each in its "
                   "own process (default: one per visible GPU; on a CPU, one at a time)")
    p.add_argument("--per-gpu", type=int, default=1, metavar="K", help="points sharing one GPU "
                   "(small models; default 1)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="run the points as Ray "
                   "tasks on a cluster (ADDRESS, e.g. 10.0.0.1:6379; none: the local cluster or a "
                   "new one); a trial whose node dies resumes from its last.pt elsewhere; needs "
                   "pip install 'lowres[ray]'")

    p = add("tune", _cmd_tune, "search a space of config values with Optuna, pruning bad trials",
            "Sample config values from --space (TPE), train each trial as a run in "
            "OUT/trials/, stop unpromising trials early, and write OUT/best.yaml and "
            "OUT/report.html. Rerun the same command to resume; run it on several machines "
            "with one --storage to share the study.")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every trial")
    p.add_argument("--space", required=True, metavar="SPACE.yaml",
                   help="dotted keys and their ranges or choices, e.g. "
                        "'stages.0.optimizer.lr: {low: 0.01, high: 0.5, log: true}'")
    p.add_argument("--trials", type=int, required=True,
                   help="trials the study should hold in all (across every worker)")
    p.add_argument("--out", default="sweeps/search", help="search directory (default: sweeps/search)")
    p.add_argument("--storage", metavar="URL",
                   help="study database URL (default: sqlite:///OUT/study.db)")
    p.add_argument("--study-name", help="study name in the database (default: OUT's name)")
    p.add_argument("--pruner", choices=["asha", "hyperband", "none"], default="asha",
                   help="early stopping by each epoch's val accuracy (default: asha)")
    p.add_argument("--grace-epochs", type=int, metavar="N",
                   help="epochs every trial trains before the pruner may stop it; its rungs are "
                        "then at N, 3N, 9N... (default 1)")
    p.add_argument("--parallel", type=int, default=1,
                   help="worker processes on this machine sharing the study, each on its own "
                        "GPU where there are GPUs (default 1)")
    p.add_argument("--per-gpu", type=int, default=1, metavar="K",
                   help="trials sharing one GPU under --parallel or --ray (small models; default 1)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the trials with Ray Tune on a cluster (ADDRESS, e.g. 10.0.0.1:6379; "
                        "none: the local cluster or a new one); OUT must be on storage every node "
                        "sees; needs pip install 'lowres[ray,tune]'")
    p.add_argument("--seed", type=int, help="sampler seed (default: random)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)

    p = add("augment-preview", _cmd_augment_preview, "a picture of a stage's augmentation",
            "Save a grid: original training images and several augmented draws of a stage's "
            "pipeline.")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--out", default="augment-preview.png")
    p.add_argument("--stage", type=int, default=0, help="stage index (default 0)")
    p.add_argument("--n", type=int, default=8, help="number of images (default 8)")
    p.add_argument("--draws", type=int, default=4, help="augmented draws per image (default 4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may come anywhere (after options too): argparse stops collecting
    # positionals at the first option, so the leftovers that look like overrides join them.
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        return args.func(args)
    except LowresError as exc:
        print(f"lowres: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lowres: interrupted", file=sys.stderr)
        return 130
