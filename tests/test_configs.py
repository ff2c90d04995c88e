"""Every shipped config under configs/ is valid and runs, and final.yaml is the seed's recipe.

* Each config is dry-run (`lowres train CONFIG --dry-run`) on the tiny generated dataset:
  its own model (never overridden) is built and one batch of its first stage's augmentation
  goes forward and backward. Only what 16x16 images with 4 classes and a CPU need is
  overridden (data root, a val split big enough to hold an image per class, CPU fp32).
* configs/seed/final.yaml resolves to exactly the numbers of the digest's final recipe
  (/work/shared/seed/DIGEST.md), and to the built-in defaults, which are that recipe too.
* The files that are "final recipe plus one change" differ from final.yaml in exactly
  that change, so a later edit of one file cannot silently drift from the others.
* configs/README.md lists every config file.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from lowres.augment.spec import parse_spec
from lowres.cli import main
from lowres.config import Config, load, to_dict

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
SEED_DIR = CONFIGS_DIR / "seed"
FINAL = SEED_DIR / "final.yaml"
CONFIGS = sorted(CONFIGS_DIR.rglob("*.yaml"))


def _id(path: Path) -> str:
    return str(path.relative_to(CONFIGS_DIR))


def test_the_configs_are_there():
    names = {_id(p) for p in CONFIGS}
    assert "seed/final.yaml" in names
    assert {"recipes/quick_cpu.yaml", "recipes/fast_gpu.yaml"} <= names
    # one file (or more) per row 0..21 of the digest's experiment table
    rows = {int(m.group(1)) for n in names if (m := re.match(r"seed/exp(\d\d)_", n))}
    assert rows == set(range(22))


# --------------------------------------------------------------------------- dry runs


def _dry_run_overrides(tiny_data: Path) -> list[str]:
    return [
        f"data.root={tiny_data}",
        # 4 classes x 24 images: 25% gives every class val images (1% would give one each).
        "data.val_fraction=0.25",
        "train.device=cpu",
        "train.precision=fp32",  # fast_gpu.yaml asks for bf16, which is slow on a CPU
        # One thread: on a busy shared CPU, two threads per process made these dry runs
        # about 4x slower (thread oversubscription); alone it costs little.
        "train.threads=1",
    ]


@pytest.fixture
def _restore_torch_threads():
    """`lowres train` sets torch's process-wide thread count; give it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("path", CONFIGS, ids=_id)
@pytest.mark.usefixtures("_restore_torch_threads")
def test_config_dry_runs(path, tiny_data, tmp_path, capsys):
    overrides = _dry_run_overrides(tiny_data)
    code = main(["train", str(path), *overrides, "--run-dir", str(tmp_path / "run"), "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = captured.out
    cfg = load(path, overrides)
    assert f"model: {cfg.model.name} (stem {cfg.model.stem}," in out
    assert "forward + backward OK" in out
    loss = float(re.search(r"forward \+ backward OK, loss (\S+)", out).group(1))
    assert math.isfinite(loss)
    stage_lines = re.findall(r"^stage (\d+) ", out, flags=re.M)
    assert [int(s) for s in stage_lines] == list(range(1, len(cfg.stages) + 1))
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


@pytest.mark.parametrize("path", CONFIGS, ids=_id)
def test_config_is_documented_and_portable(path):
    text = path.read_text()
    assert text.startswith("#"), "every config starts with a comment: what it tests and why"
    cfg = load(path, require_root=False)
    # A default data.root relative to the current directory, overridden with data.root=PATH.
    assert cfg.data.root and not Path(cfg.data.root).is_absolute()
    # YAML anchors/aliases would make one override change every place the node is used.
    assert not re.search(r"(^|\s)[&*][A-Za-z_]", re.sub(r"#.*", "", text))


# --------------------------------------------------------------------------- final.yaml


def _flip_ops(spec: dict) -> list[tuple[str, float]]:
    return [(op["op"], op["p"]) for op in spec["ops"]]


def test_final_is_the_digest_recipe():
    cfg = load(FINAL, require_root=False)
    assert cfg.data.root == "data/tiny40"
    assert cfg.data.val_fraction == 0.01  # 99:1
    m = cfg.model
    assert (m.name, m.stem, m.head, m.dropout, m.init, m.drop_path) == (
        "resnet50", "k4", "linear", 0.8, "he_normal", 0.0)
    assert cfg.train.batch_size == 200
    assert cfg.train.label_smoothing == 0.1
    assert cfg.train.ema == 0.0
    assert [s.epochs for s in cfg.stages] == [70, 30, 1]
    for stage in cfg.stages:
        assert stage.reset_optimizer  # a fresh optimizer (and scheduler) in every stage
        o = stage.optimizer
        assert (o.name, o.momentum, o.nesterov, o.weight_decay) == ("sgd", 0.9, False, 1e-4)
    for stage in cfg.stages[:2]:
        assert stage.optimizer.lr == 0.1
        s = stage.scheduler
        assert (s.name, s.patience, s.cooldown, s.factor, s.monitor) == (
            "plateau", 7, 1, 0.1, "val_acc")
        assert (stage.stop.after_lr_drop, stage.stop.extra_epochs, stage.stop.patience) == (1, 2, None)
    stage3 = cfg.stages[2]
    assert stage3.optimizer.lr == 0.01
    assert stage3.scheduler.name == "constant"
    assert stage3.stop.after_lr_drop is None

    one, two, three = (s.augment for s in cfg.stages)
    assert [op["op"] for op in one] == ["random_choice", "grayscale", "gaussian_blur", "erasing"]
    assert [op["op"] for op in two] == ["random_choice", "randaugment", "erasing"]
    assert three == two  # stage 3: "same augmentation"
    for flip in (one[0], two[0]):
        assert _flip_ops(flip) == [("hflip", 0.25), ("vflip", 0.25)]
        assert flip["weights"] == [0.5, 0.5]
    for erasing in (one[3], two[2]):
        assert erasing["ratio"] == [1.0, 1.0]  # always square
    assert (two[1]["num_ops"], two[1]["magnitude"]) == (2, 9)


def _normalised(cfg: Config) -> dict:
    """The config as a plain tree with every augmentation spec fully resolved (all op
    parameters, random_choice weights as fractions), for comparing configs by meaning."""
    tree = to_dict(cfg)
    tree["data"]["root"] = ""

    def resolve(parsed):
        out = []
        for cls, params in parsed:
            params = dict(params)
            if "ops" in params:
                params["ops"] = resolve(params["ops"])
                n = len(params["ops"])
                weights = params.get("weights") or (1.0,) * n
                params["weights"] = tuple(w / sum(weights) for w in weights)
            out.append((cls.name, params))
        return out

    for stage in tree["stages"]:
        stage["augment"] = resolve(parse_spec(stage["augment"]))
    return tree


def test_final_equals_the_built_in_defaults():
    """config.py's defaults are documented as the seed's final recipe: keep the two equal."""
    assert _normalised(load(FINAL, require_root=False)) == _normalised(Config())


# --------------------------------------------------------------------------- one change each


def _differences(a, b, where: str = "") -> set[str]:
    """Dotted keys where two plain trees differ (lists of unequal length: the list's key)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        return set().union(*(_differences(a.get(k), b.get(k), f"{where}.{k}".lstrip("."))
                             for k in keys)) if keys else set()
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return set().union(*(_differences(x, y, f"{where}.{i}") for i, (x, y) in enumerate(zip(a, b)))) \
            if a else set()
    return set() if a == b else {where}


ALL_STAGES = ("stages.0", "stages.1", "stages.2")
WEIGHT_DECAYS = [f"{s}.optimizer.weight_decay" for s in ALL_STAGES]
ONE_CHANGE = {  # file -> (base file, the keys that may and must differ, as prefixes)
    "seed/exp00_dataset_stats.yaml": ("seed/final.yaml", []),
    "seed/exp04_dropout_05.yaml": ("seed/exp03_resnet50_sgd_plateau.yaml", ["model.dropout"]),
    "seed/exp04_dropout_08.yaml": ("seed/exp03_resnet50_sgd_plateau.yaml", ["model.dropout"]),
    "seed/exp05_mlp_head.yaml": ("seed/exp03_resnet50_sgd_plateau.yaml", ["model.head", "model.dropout"]),
    "seed/exp06_label_smoothing.yaml": ("seed/final.yaml", ["train.label_smoothing"]),
    "seed/exp07_stochastic_depth.yaml": ("seed/final.yaml", ["model.drop_path"]),
    "seed/exp08_vertical_flip.yaml": ("seed/final.yaml", [f"{s}.augment.0" for s in ALL_STAGES]),
    "seed/exp09_erasing_fill_and_size.yaml": ("seed/final.yaml", [
        "stages.0.augment.3.1.value", "stages.1.augment.2.1.value", "stages.2.augment.2.1.value"]),
    "seed/exp10_color_jitter.yaml": ("seed/final.yaml", ["stages.0.augment"]),
    "seed/exp11_cutmix.yaml": ("seed/final.yaml", ["stages.0.augment"]),
    "seed/exp11_mixup.yaml": ("seed/final.yaml", ["stages.0.augment"]),
    "seed/exp11_augmix.yaml": ("seed/final.yaml", ["stages.0.augment"]),
    "seed/exp12_randaugment.yaml": ("seed/final.yaml", ["stages.1.augment", "stages.2.augment"]),
    "seed/exp13_no_grayscale_blur.yaml": ("seed/final.yaml", ["stages.0.augment"]),
    "seed/exp14_wide_resnet50_2.yaml": ("seed/final.yaml", ["model.name"]),
    "seed/exp16_resnet34_wide.yaml": ("seed/final.yaml", ["model.name"]),
    "seed/exp18_resnet34.yaml": ("seed/final.yaml", ["model.name"]),
    "seed/exp19_nesterov.yaml": ("seed/final.yaml", [f"{s}.optimizer.nesterov" for s in ALL_STAGES]),
    "seed/exp20_weight_decay_x100.yaml": ("seed/final.yaml", WEIGHT_DECAYS),
    "seed/exp20_weight_decay_x0.1.yaml": ("seed/final.yaml", WEIGHT_DECAYS),
    "seed/exp21_default_init.yaml": ("seed/final.yaml", ["model.init"]),
    "recipes/fast_gpu.yaml": ("seed/final.yaml", [
        "train.ema", "train.device", "train.precision", "train.channels_last", "train.compile",
        "data.resident"]),
}


@pytest.mark.parametrize("name", sorted(ONE_CHANGE))
def test_variant_differs_from_its_base_in_exactly_its_change(name):
    base, expected = ONE_CHANGE[name]
    diffs = _differences(_normalised(load(CONFIGS_DIR / name, require_root=False)),
                         _normalised(load(CONFIGS_DIR / base, require_root=False)))
    stray = {d for d in diffs if not any(d == e or d.startswith(e + ".") for e in expected)}
    missing = [e for e in expected if not any(d == e or d.startswith(e + ".") for d in diffs)]
    assert not stray, f"{name} differs from {base} in more than its change: {sorted(stray)}"
    assert not missing, f"{name} does not change {missing} relative to {base}"


def test_weight_decay_files_scale_the_final_value():
    final = load(FINAL, require_root=False)
    for tag, factor in (("x100", 100), ("x0.1", 0.1)):
        cfg = load(SEED_DIR / f"exp20_weight_decay_{tag}.yaml", require_root=False)
        for stage, base in zip(cfg.stages, final.stages):
            assert stage.optimizer.weight_decay == pytest.approx(base.optimizer.weight_decay * factor)


# --------------------------------------------------------------------------- README


def test_readme_lists_every_config():
    readme = (CONFIGS_DIR / "README.md").read_text()
    for path in CONFIGS:
        assert _id(path) in readme, f"configs/README.md does not mention {_id(path)}"

