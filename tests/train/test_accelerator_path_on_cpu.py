"""The accelerator's code path, run on the CPU: the nearest thing to a GPU that CI has.

bf16 autocast, torch.compile (Inductor, with the machine's C compiler), "where"
augmentation (fixed shapes, no data-dependent subsets) and the host-gathered loader are
all choices of the device policy that the CPU can make too. A small model trains with all
of them on, learns, pauses mid-epoch and resumes; and a whole training step, with its real
augmentation draws, runs under the sync detector, which fails on any operation that would
make the host wait for a GPU.
"""
import pytest
import torch

from run_configs import write_config
from lowres.augment.base import forced_masking
from lowres.augment import build_pipeline
from lowres.config import DataConfig, TrainConfig, load
from lowres.errors import ConfigError
from lowres.data.synthetic import make_competition_dataset
from lowres.data.prepare import prepare
from lowres.run.log import read_metrics
from lowres.train import distributed
from lowres.train.device import resolve
from lowres.train import engine as engine_mod
from lowres.train.loop import train
from lowres.train.run_state import Run
from sync_detector import SyncDetector, SyncError, intended_sync

ACCELERATOR_POLICY = {"precision": "bf16", "compile": "yes", "augment_masking": "where",
                      "channels_last": "yes"}
SEED_STAGE2_LIKE = [  # every kind of op: choice, flips, RandAugment, erasing, then a mix
    {"op": "random_choice", "ops": [{"op": "hflip", "p": 0.25}, {"op": "vflip", "p": 0.25}]},
    {"op": "randaugment", "num_ops": 2, "magnitude": 9},
    {"op": "crop", "padding": 2, "padding_mode": "reflect"},
    {"op": "erasing", "p": 0.5, "ratio": [1, 1]},
    {"op": "mixup_cutmix", "p": 0.5, "per_sample": True},
]


@pytest.fixture(scope="module")
def learnable_data(tmp_path_factory):
    """Enough images for a few epochs to show learning: 4 classes x 80 of 16x16."""
    root = tmp_path_factory.mktemp("learnable") / "data"
    return make_competition_dataset(root, classes=4, per_class=80, test_per_class=1, size=16)


def test_training_with_the_accelerator_policy_learns_pauses_and_resumes(learnable_data, tmp_path):
    stages = [{"epochs": 3, "scheduler": {"name": "cosine", "warmup_epochs": 0.5},
               "optimizer": {"lr": 0.05},
               "augment": [{"op": "hflip", "p": 0.5}, {"op": "crop", "padding": 2}]}]
    cfg = write_config(tmp_path / "c.yaml", learnable_data, stages=stages,
                       train=dict(ACCELERATOR_POLICY, batch_size=32),
                       data={"root": str(learnable_data), "val_fraction": 0.25, "resident": "no"},
                       model={"name": "cnn_small", "dropout": 0.0})
    run = tmp_path / "run"
    first = train(cfg, run_dir=run, pause_after_steps=10)  # 7 steps per epoch: mid-epoch 2
    assert first.state == "stopped"
    assert train(None, resume=run).state == "finished"
    rows = read_metrics(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < 0.9 * losses[0]  # it learns
    assert float(rows[-1]["val_acc"]) > 0.3  # 4 classes: chance is 0.25


def _step_once(run: Run, pipeline, batches) -> None:
    """One step of Engine.train_epoch's body (draws, forward, backward, optimizer, EMA,
    metric sums), exactly as it runs there."""
    x_u8, y = next(batches)
    x, targets = pipeline(x_u8, y, run.aug_gen)
    loss, logits = run.engine.train_step(run.engine._prepare(x), targets, run.optimizer)
    run.engine.ema.update()
    return loss, logits, y


def test_a_whole_training_step_never_waits_for_the_device(tiny_data, tmp_path, monkeypatch):
    cfg = load(write_config(tmp_path / "c.yaml", tiny_data,
                            stages=[{"epochs": 2, "augment": SEED_STAGE2_LIKE}],
                            train=dict(ACCELERATOR_POLICY, compile="no", ema=0.9),
                            data={"root": str(tiny_data), "val_fraction": 0.25,
                                  "resident": "no"}))
    data = prepare(cfg.data, cfg.seed)
    policy = resolve(cfg.train, cfg.data)
    run = Run(cfg, tmp_path / "run", data, policy, distributed.Context())
    run.start_stage()
    pipeline = run.pipeline()
    # Warm-up outside the detector: constant tables are built once, on the first batch.
    with forced_masking(policy.augment_masking):
        batches = run.loader.batches(0)
        _step_once(run, pipeline, batches)
        with SyncDetector():
            _step_once(run, pipeline, batches)
    # The whole epoch, progress refresh on at every step, under the detector.
    monkeypatch.setattr(engine_mod, "REFRESH_SECONDS", -1.0)
    monkeypatch.setattr(engine_mod, "bar", _VisibleBar)
    with SyncDetector():
        progress = run.engine.train_epoch(run.loader, 1, pipeline, run.optimizer,
                                          run.schedule, 0, run.aug_gen)
    assert progress.seen == run.loader.steps_per_epoch * 16 and _VisibleBar.refreshes >= 3


class _VisibleBar:
    """A progress bar that counts refreshes instead of drawing (as on a terminal)."""
    refreshes = 0
    disable = False

    def __init__(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        _VisibleBar.refreshes += 1

    def close(self):
        pass


def test_the_detector_sees_what_a_gpu_would_wait_for():
    x = torch.arange(6.0)
    cases = [lambda: x.sum().item(), lambda: bool(x.max() > 2), lambda: x.tolist(),
             lambda: x[x > 2], lambda: x.nonzero(), lambda: torch.tensor([1.0, 2.0]),
             lambda: torch.bincount(x.long()), lambda: x.repeat_interleave(x.long())]
    for case in cases:
        with pytest.raises(SyncError, match="host-device synchronisation"), SyncDetector():
            case()
    with SyncDetector():  # fixed-shape work and intended reads pass
        torch.where(x > 2, x, -x).cumsum(0)
        x.repeat_interleave(2)
        with intended_sync("epoch end"):
            x.sum().item()


def test_the_where_mode_augmentation_compiles_to_one_graph(monkeypatch):
    """The seed's stage-2 ops (and a mix after them) trace as ONE graph in where mode
    (fullgraph: any break would raise), with the numbers of the eager ops. The eager
    backend keeps this quick; `make gpu-check` measures Inductor's speed on a GPU."""
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(fn, backend="eager", **kw))
    images = torch.randint(0, 256, (32, 3, 24, 24), dtype=torch.uint8)
    labels = torch.randint(0, 10, (32,))
    eager = build_pipeline(SEED_STAGE2_LIKE, (0.5,) * 3, (0.25,) * 3, 10)
    compiled = build_pipeline(SEED_STAGE2_LIKE, (0.5,) * 3, (0.25,) * 3, 10)
    compiled.compile_ops()
    with forced_masking("where"):
        for seed in (1, 2):
            xa, ya = eager(images, labels, torch.Generator().manual_seed(seed))
            xb, yb = compiled(images, labels, torch.Generator().manual_seed(seed))
            assert torch.allclose(xa, xb, atol=1e-6) and torch.equal(ya, yb)
    assert compiled._apply is not compiled.apply_ops  # no fallback happened


def test_compiled_augmentation_needs_the_where_mode():
    with pytest.raises(ConfigError, match="compile_augment=yes needs"):
        resolve(TrainConfig(device="cpu", compile_augment="yes"), DataConfig())
    policy = resolve(TrainConfig(device="cpu", compile_augment="yes", augment_masking="where"),
                     DataConfig())
    assert policy.compile_augment and "compiled" in policy.describe()
