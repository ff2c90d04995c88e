"""On a CUDA GPU only (`make gpu-check` runs these; elsewhere they are skipped): the GPU
path end to end, with the checks that only a real device can make."""
import pytest
import torch

from run_configs import write_config
from lowres.augment import build_pipeline
from lowres.augment.base import forced_masking
from lowres.cli import main
from lowres.config import DataConfig, TrainConfig
from lowres.run.log import read_events, read_metrics, read_status
from lowres.run import checkpoint
from lowres.train.device import resolve
from lowres.train.loop import train

pytestmark = pytest.mark.cuda

GPU = {"device": "cuda", "precision": "auto", "compile": "auto"}  # auto: the GPU's own row (a P100: eager)
STAGE2_LIKE = [{"op": "random_choice", "ops": [{"op": "hflip", "p": 0.25}, {"op": "vflip", "p": 0.25}]},
               {"op": "randaugment", "num_ops": 2, "magnitude": 9},
               {"op": "erasing", "p": 0.5, "ratio": [1, 1]}]


def test_the_policy_on_this_gpu_is_its_table_row_and_one_step_runs():
    from lowres.train.engine import Engine
    from lowres.train.device import generation, kernels_run_on

    major, minor = torch.cuda.get_device_capability()
    row = generation((major, minor))
    policy = resolve(TrainConfig(device="cuda", compile="no"), DataConfig())
    assert {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[policy.amp_dtype] == row.precision
    assert policy.channels_last == row.channels_last
    if hasattr(torch.backends.cudnn, "conv"):  # compat.set_tf32's switches (allow_tf32 raises)
        assert torch.backends.cuda.matmul.fp32_precision == ("tf32" if row.tf32 else "ieee")
        assert torch.backends.cudnn.conv.fp32_precision == ("tf32" if row.tf32 else "ieee")
    else:
        assert torch.backends.cuda.matmul.allow_tf32 is row.tf32
    assert kernels_run_on(torch.cuda.get_arch_list(), (major, minor))  # the rule, on a real GPU
    assert policy.gpu.capability == (major, minor) and policy.gpu.sm in policy.describe_choices()
    if row.precision == "bf16":
        assert torch.cuda.is_bf16_supported()
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.LazyLinear(4))
    model(torch.zeros(1, 3, 8, 8))
    engine = Engine(model, policy, label_smoothing=0.0)
    optimizer = torch.optim.SGD(engine.module.parameters(), lr=0.1)
    loss, _ = engine.train_step(torch.randn(4, 3, 8, 8, device=policy.device),
                                torch.tensor([0, 1, 2, 3], device=policy.device), optimizer)
    assert torch.isfinite(loss).item()


def test_a_bare_cuda_device_trains_its_augmentation_on_an_indexed_gpu():
    policy = resolve(TrainConfig(device="cuda"), DataConfig())
    assert policy.device.index is not None
    generator = torch.Generator(device=policy.device).manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 40, 40), dtype=torch.uint8, device=policy.device)
    pipeline = build_pipeline(STAGE2_LIKE, (0.5,) * 3, (0.25,) * 3, 10)
    x, _ = pipeline(images, torch.zeros(8, dtype=torch.long, device=policy.device), generator)
    assert x.device == policy.device


def test_where_and_subset_give_the_same_augmentation_on_the_gpu():
    pipeline = build_pipeline(STAGE2_LIKE, (0.5,) * 3, (0.25,) * 3, 10)
    images = torch.randint(0, 256, (64, 3, 40, 40), dtype=torch.uint8, device="cuda")
    labels = torch.zeros(64, dtype=torch.long, device="cuda")
    results = []
    for mode in ("where", "subset"):
        generator = torch.Generator(device="cuda").manual_seed(3)
        with forced_masking(mode):
            results.append(pipeline(images, labels, generator)[0])
    assert torch.allclose(results[0], results[1], atol=1e-5)


def test_a_training_epoch_makes_no_host_device_synchronisation(tiny_data, tmp_path, monkeypatch):
    """CUDA's own sync detector over whole epochs (the first compiles, outside the check)."""
    from lowres.train import engine

    real_epoch = engine.Engine.train_epoch
    calls = [0]

    def checked_epoch(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 1:
            return real_epoch(self, *args, **kwargs)
        torch.cuda.set_sync_debug_mode("error")
        try:
            return real_epoch(self, *args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(engine.Engine, "train_epoch", checked_epoch)
    cfg = write_config(tmp_path / "c.yaml", tiny_data, train=dict(GPU, ema=0.9),
                       stages=[{"epochs": 2, "augment": STAGE2_LIKE}])
    assert train(cfg, run_dir=tmp_path / "run").state == "finished"


def test_train_pause_resume_predict_on_the_gpu_then_resume_on_the_cpu(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, train=GPU,
                       stages=[{"epochs": 3, "augment": STAGE2_LIKE}])
    run = tmp_path / "run"
    assert train(cfg, run_dir=run, pause_after_steps=6).state == "stopped"
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["rng"]["augment_device"] == "cuda" and state["position"]["step"] == 2
    assert train(None, resume=run, pause_after_epochs=1).state == "stopped"
    assert main(["predict", str(run), "--data", str(tiny_data), "--out", str(tmp_path / "s.csv"),
                 "--tta", "flip", "--device", "cuda"]) == 0
    # The GPU session ends; the run goes on on a CPU.
    assert train(None, ["train.device=cpu", "train.precision=fp32", "train.compile=no"],
                 resume=run).state == "finished"
    assert read_status(run)["state"] == "finished"
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2", "3"]
    assert any("saved on cuda" in e.get("message", "") for e in read_events(run))


def test_the_dry_run_names_the_gpu_its_memory_and_seconds_per_epoch(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, train=GPU)
    assert main(["train", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out
    name = torch.cuda.get_device_name()
    assert name in out and "sm_" in out and "estimated peak GPU memory" in out
    assert "s per epoch" in out and "on this" in out
