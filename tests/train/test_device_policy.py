"""The device policy on a pretend CUDA machine: what a GPU user's config resolves to."""
from types import SimpleNamespace

import pytest
import torch

from lowres.config import DataConfig, TrainConfig
from lowres.errors import ConfigError
from lowres.augment.pipeline import same_device
from lowres.train.device import resolve


def fake_gpus(monkeypatch, count=2, name="NVIDIA H100 80GB HBM3", capability=(9, 0), memory_gib=80):
    """torch.cuda answers as on a machine with `count` such GPUs (nothing runs on them)."""
    props = SimpleNamespace(name=name, major=capability[0], minor=capability[1],
                            total_memory=memory_gib << 30, multi_processor_count=1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (memory_gib << 30,) * 2)


@pytest.fixture
def restore_backends():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    yield
    (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
     torch.backends.cuda.matmul.allow_tf32) = saved


@pytest.fixture
def two_gpus(monkeypatch, restore_backends):
    fake_gpus(monkeypatch)


def test_cuda_always_resolves_to_an_indexed_device(two_gpus):
    """A bare torch.device('cuda') gives a Generator on 'cuda' while batches land on
    'cuda:0': the augmentation's device check (and randperm) refuse the pair."""
    assert resolve(TrainConfig(device="auto"), DataConfig()).device == torch.device("cuda", 0)
    assert resolve(TrainConfig(device="cuda"), DataConfig()).device == torch.device("cuda", 0)
    assert resolve(TrainConfig(device="cuda:1"), DataConfig()).device == torch.device("cuda", 1)


def test_gpu_policy_defaults(two_gpus):
    policy = resolve(TrainConfig(device="cuda"), DataConfig(), dataset_bytes=1 << 30)
    assert policy.amp_dtype is torch.bfloat16 and policy.compile and policy.channels_last
    assert policy.resident and policy.augment_masking == "where"


def test_torchrun_gives_each_rank_its_own_gpu(two_gpus):
    for rank in (0, 1):
        policy = resolve(TrainConfig(device="cuda"), DataConfig(), local_rank=rank, world_size=2)
        assert policy.device == torch.device("cuda", rank)
    with pytest.raises(ConfigError, match="under torchrun: each process uses the GPU of its "
                                          "LOCAL_RANK"):
        resolve(TrainConfig(device="cuda:1"), DataConfig(), local_rank=0, world_size=2)
    with pytest.raises(ConfigError, match="LOCAL_RANK=2 but this machine has 2 visible GPU"):
        resolve(TrainConfig(device="cuda"), DataConfig(), local_rank=2, world_size=3)
    with pytest.raises(ConfigError, match="cuda:2 but this machine has 2 visible GPU"):
        resolve(TrainConfig(device="cuda:2"), DataConfig())


def test_accelerator_choices_can_be_made_on_the_cpu():
    policy = resolve(TrainConfig(device="cpu", precision="bf16", compile="yes",
                                 augment_masking="where"), DataConfig(resident="no"))
    assert policy.device == torch.device("cpu") and policy.amp_dtype is torch.bfloat16
    assert policy.compile and not policy.resident and policy.augment_masking == "where"
    assert "gathered on the host" in policy.describe()


def test_same_device_treats_a_missing_index_as_the_current_device(two_gpus):
    assert same_device(torch.device("cuda"), torch.device("cuda", 0))
    assert not same_device(torch.device("cuda"), torch.device("cuda", 1))
    assert not same_device(torch.device("cpu"), torch.device("cuda", 0))
    assert same_device(torch.device("cpu"), torch.device("cpu"))


# The GPUs our users train on (name, compute capability, memory in GiB) and what `auto`
# must give each: precision, torch.compile, channels_last, TF32 (train/gpu_policy.py).
USERS_GPUS = {
    "P100": ("Tesla P100-PCIE-16GB", (6, 0), 16, (None, False, False, False)),
    "T4": ("Tesla T4", (7, 5), 15, (torch.float16, True, True, False)),
    "V100": ("Tesla V100-SXM2-32GB", (7, 0), 32, (torch.float16, True, True, False)),
    "A100": ("NVIDIA A100-SXM4-80GB", (8, 0), 80, (torch.bfloat16, True, True, True)),
    "L4": ("NVIDIA L4", (8, 9), 24, (torch.bfloat16, True, True, True)),
    "RTX 4090": ("NVIDIA GeForce RTX 4090", (8, 9), 24, (torch.bfloat16, True, True, True)),
    "H100": ("NVIDIA H100 80GB HBM3", (9, 0), 80, (torch.bfloat16, True, True, True)),
}


@pytest.mark.parametrize("gpu", sorted(USERS_GPUS))
def test_each_gpu_generation_gets_its_row(gpu, monkeypatch, restore_backends):
    """bf16 only from sm_80, fp16 + grad scaler on Volta/Turing, fp32 and eager on Pascal
    (Triton needs sm_70), TF32 only from Ampere."""
    name, capability, memory, (amp, compiled, channels_last, tf32) = USERS_GPUS[gpu]
    fake_gpus(monkeypatch, count=1, name=name, capability=capability, memory_gib=memory)
    policy = resolve(TrainConfig(device="auto"), DataConfig())
    assert (policy.amp_dtype, policy.compile, policy.channels_last) == (amp, compiled, channels_last)
    assert policy.needs_scaler == (amp is torch.float16)
    assert torch.backends.cuda.matmul.allow_tf32 is tf32 and torch.backends.cudnn.allow_tf32 is tf32
    # The first line of a run names the GPU, its capability and memory, and each choice's reason.
    text = policy.describe_choices()
    assert name in text and f"sm_{capability[0]}{capability[1]}" in text and f"{memory:.1f} GiB" in text
    assert len(policy.reasons) == 4 and all(": " in reason for reason in policy.reasons)


def test_reasons_say_why_in_words(monkeypatch, restore_backends):
    fake_gpus(monkeypatch, count=1, name="Tesla T4", capability=(7, 5), memory_gib=15)
    reasons = resolve(TrainConfig(device="cuda"), DataConfig()).reasons
    assert reasons[0].startswith("fp16 autocast + grad scaler: the T4 (sm_75) has no bf16")
    fake_gpus(monkeypatch, count=1, name="Tesla P100-PCIE-16GB", capability=(6, 0), memory_gib=16)
    reasons = resolve(TrainConfig(device="cuda"), DataConfig()).reasons
    assert reasons[1] == "torch.compile off: the P100-PCIE-16GB (sm_60) is too old (sm_70+ needed) by Triton"


def test_forcing_what_the_gpu_cannot_do_is_one_line(monkeypatch, restore_backends):
    fake_gpus(monkeypatch, count=1, name="Tesla T4", capability=(7, 5), memory_gib=15)
    with pytest.raises(ConfigError, match=r"train.precision=bf16 but the T4 \(sm_75\) has no bf16 "
                                          r".*use train.precision=fp16"):
        resolve(TrainConfig(device="cuda", precision="bf16"), DataConfig())
    fake_gpus(monkeypatch, count=1, name="Tesla P100-PCIE-16GB", capability=(6, 0), memory_gib=16)
    with pytest.raises(ConfigError, match="train.compile=yes but the P100-PCIE-16GB .* Triton"):
        resolve(TrainConfig(device="cuda", compile="yes"), DataConfig())
    # What the hardware can do stays allowed: fp16 on a P100, eager on an H100.
    assert resolve(TrainConfig(device="cuda", precision="fp16"), DataConfig()).needs_scaler
    fake_gpus(monkeypatch, count=1)
    policy = resolve(TrainConfig(device="cuda", compile="no", precision="fp32"), DataConfig())
    assert not policy.compile and policy.amp_dtype is None
    assert "set by train.precision" in policy.reasons[0]
