"""The peak-memory estimate (train/memory_estimate.py): each seed config fits a 16 GB card
in fp16, the estimate's own arithmetic holds, and an out-of-memory error names a batch
that fits. (`make gpu-check` compares the estimate with torch.cuda.max_memory_allocated.)"""
import dataclasses
from pathlib import Path

import pytest
import torch

from lowres.config import DataConfig, TrainConfig, load
from lowres.errors import LowresError
from lowres.models import build_model
from lowres.train.device import resolve
from lowres.train.dry_run import estimate_memory
from lowres.train.engine import Engine
from lowres.train.device import GpuInfo
from lowres.train.memory_estimate import USABLE, MemoryEstimate, estimate

SEED = Path(__file__).resolve().parents[2] / "configs" / "seed"
GB16 = 16 * 10**9  # a "16 GB" card as sold (the T4 shows 15 GiB, the P100 16 GiB)


def test_every_seed_config_fits_a_16gb_card_in_fp16():
    seen = {}
    for path in sorted(SEED.glob("*.yaml")):
        cfg = load(path, ["data.root=/nowhere"], require_root=False)
        key = (repr(cfg.model), tuple(s.optimizer.name for s in cfg.stages), cfg.train.ema)
        if key not in seen:
            torch.manual_seed(0)
            model = build_model(cfg.model, 200, in_channels=3, image_size=40)
            seen[key] = estimate_memory(model, (3, 40, 40), {s.optimizer.name for s in cfg.stages},
                                        bool(cfg.train.ema), amp=True)
        peak = seen[key].peak_bytes(cfg.train.batch_size)
        assert peak <= USABLE * GB16, f"{path.name}: {seen[key].line(cfg.train.batch_size, GB16)}"
    assert len(seen) >= 6  # ResNet-50 variants, ResNet-34s, EfficientNet-B7, Swin-T, ...


def test_estimate_arithmetic():
    torch.manual_seed(0)
    cfg = load(SEED / "final.yaml", ["data.root=/nowhere"], require_root=False)
    model = build_model(cfg.model, 200, in_channels=3, image_size=40)
    fp16, fp32 = (estimate(model, (3, 40, 40), "sgd", amp=amp) for amp in (True, False))
    params = sum(p.numel() for p in model.parameters()) * 4
    assert fp16.fixed_bytes >= 3 * params  # weights, gradients, momentum
    assert 1.5 < fp32.per_image_bytes / fp16.per_image_bytes < 2.2  # half-width activations
    assert estimate(model, (3, 40, 40), "adam", ema=True).fixed_bytes >= fp16.fixed_bytes + 2 * params
    card = 16 << 30
    fits = fp16.largest_batch(card)
    assert fp16.peak_bytes(fits) <= USABLE * card < fp16.peak_bytes(fits + 1)
    assert "fits a 16 GB card" in fp16.line(200) and "does not fit" in fp16.line(fits + 1)
    assert next(model.parameters()).device.type == "cpu"  # the model itself is not touched


class OutOfMemory(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 64, 3, padding=1)

    def forward(self, x):
        if x.shape[0] > 4:  # the estimate's own probes (batches 2 and 4) pass
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.conv(x).mean((2, 3))


def test_out_of_memory_on_a_gpu_names_a_batch_that_fits():
    policy = resolve(TrainConfig(device="cpu", compile="no"), DataConfig())
    policy = dataclasses.replace(policy, gpu=GpuInfo("Tesla T4", (7, 5), 15 << 30))
    engine = Engine(OutOfMemory(), policy, label_smoothing=0.0)
    fits = estimate(OutOfMemory(), (3, 8, 8), "sgd", amp=False).largest_batch(15 << 30)
    with pytest.raises(LowresError, match=rf"out of memory on cpu at 6 images per step: set "
                                          rf"train.batch_size={fits} or lower \(.*T4's 15 GiB\)"):
        engine.train_step(torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 0, 1, 0, 1]),
                          torch.optim.SGD(engine.module.parameters(), lr=0.1))


RESIDENT_100K = 100_000 * 3 * 40 * 40  # 100k 40x40x3 uint8 images kept on the GPU: 0.45 GiB


def test_the_largest_batch_leaves_room_for_the_dataset_kept_on_the_gpu():
    est = MemoryEstimate(fixed_bytes=1 << 30, per_image_bytes=1 << 20)
    card = 16 << 30
    alone, beside = est.largest_batch(card), est.largest_batch(card, resident_bytes=RESIDENT_100K)
    assert beside == int((USABLE * card - est.fixed_bytes - RESIDENT_100K) // est.per_image_bytes)
    assert alone - beside == pytest.approx(RESIDENT_100K / est.per_image_bytes, abs=1)  # 457 images
    assert est.peak_bytes(beside) + RESIDENT_100K <= USABLE * card
    assert f"the largest batch that fits: {beside}" in est.line(200, card, resident_bytes=RESIDENT_100K)
    assert "beside the dataset 0.45 GiB" in est.line(200, card, resident_bytes=RESIDENT_100K)
    assert "does not fit" in est.line(alone, card, resident_bytes=RESIDENT_100K)
    assert "dataset" not in est.line(200, card)  # not resident: as before


def test_out_of_memory_advice_leaves_room_for_a_resident_dataset():
    policy = resolve(TrainConfig(device="cpu", compile="no"), DataConfig())
    policy = dataclasses.replace(policy, gpu=GpuInfo("Tesla T4", (7, 5), 15 << 30))
    engine = Engine(OutOfMemory(), policy, label_smoothing=0.0)
    engine.resident_bytes = RESIDENT_100K  # as the run sets it when the dataset is on the GPU
    fits = estimate(OutOfMemory(), (3, 8, 8), "sgd", amp=False).largest_batch(
        15 << 30, resident_bytes=RESIDENT_100K)
    with pytest.raises(LowresError, match=rf"set train.batch_size={fits} or lower \(.*T4's 15 GiB, "
                                          rf"0.45 GiB of it the dataset\)"):
        engine.train_step(torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 0, 1, 0, 1]),
                          torch.optim.SGD(engine.module.parameters(), lr=0.1))
