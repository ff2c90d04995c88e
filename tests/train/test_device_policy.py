"""The device policy on a pretend CUDA machine: what a GPU user's config resolves to."""
from types import SimpleNamespace

import pytest
import torch

from lowres.config import DataConfig, TrainConfig
from lowres.errors import ConfigError
from lowres.augment.pipeline import same_device
from lowres.train.device import resolve


# torch.cuda.get_arch_list() of two wheels: cu126 has kernels for every GPU of USERS_GPUS;
# cu130 (like cu128 from torch 2.11) starts at Turing: no sm_60 (P100), no sm_70 (V100).
CU126_ARCHS = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
CU130_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]


def fake_gpus(monkeypatch, count=2, name="NVIDIA H100 80GB HBM3", capability=(9, 0), memory_gib=80,
              arch_list=CU126_ARCHS, torch_version="2.14.1+cu126", cuda_version="12.6"):
    """torch.cuda answers as on a machine with `count` such GPUs (nothing runs on them), with a
    torch built for `arch_list` (torch.cuda.get_arch_list())."""
    props = SimpleNamespace(name=name, major=capability[0], minor=capability[1],
                            total_memory=memory_gib << 30, multi_processor_count=1)
    monkeypatch.setattr(torch, "__version__", torch_version)
    monkeypatch.setattr(torch.version, "cuda", cuda_version)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(arch_list))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (memory_gib << 30,) * 2)


# TF32's switches: fp32_precision ("tf32" / "ieee" / "none": inherit) where torch has them
# (reading the old allow_tf32 after they were set raises), allow_tf32 on older torches.
NEW_TF32_API = hasattr(torch.backends.cudnn, "conv")


def tf32_switches() -> tuple:
    if NEW_TF32_API:
        return (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
                torch.backends.cudnn.rnn.fp32_precision)
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def tf32_on() -> tuple[bool, bool]:
    """(matmul, convolution) TF32, whichever API this torch has."""
    if NEW_TF32_API:
        return (torch.backends.cuda.matmul.fp32_precision == "tf32",
                torch.backends.cudnn.conv.fp32_precision == "tf32")
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


@pytest.fixture
def restore_backends():
    saved = torch.backends.cudnn.benchmark, tf32_switches()
    yield
    torch.backends.cudnn.benchmark, switches = saved
    if NEW_TF32_API:
        (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
         torch.backends.cudnn.rnn.fp32_precision) = switches
    else:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches


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
# must give each: precision, torch.compile, channels_last, TF32 (train/device.GENERATIONS).
USERS_GPUS = {
    "P100": ("Tesla P100-PCIE-16GB", (6, 0), 16, (None, False, False, False)),
    "T4": ("Tesla T4", (7, 5), 15, (torch.float16, False, True, False)),
    "V100": ("Tesla V100-SXM2-32GB", (7, 0), 32, (torch.float16, False, True, False)),
    "A100": ("NVIDIA A100-SXM4-80GB", (8, 0), 80, (torch.bfloat16, True, True, True)),
    "L4": ("NVIDIA L4", (8, 9), 24, (torch.bfloat16, True, True, True)),
    "RTX 4090": ("NVIDIA GeForce RTX 4090", (8, 9), 24, (torch.bfloat16, True, True, True)),
    "H100": ("NVIDIA H100 80GB HBM3", (9, 0), 80, (torch.bfloat16, True, True, True)),
}


@pytest.mark.parametrize("gpu", sorted(USERS_GPUS))
def test_each_gpu_generation_gets_its_row(gpu, monkeypatch, restore_backends):
    """bf16 only from sm_80, fp16 + grad scaler on Volta/Turing, fp32 on Pascal, compiled only
    from sm_80 (Triton's supported GPUs; torch lets sm_70 try), TF32 only from Ampere."""
    name, capability, memory, (amp, compiled, channels_last, tf32) = USERS_GPUS[gpu]
    fake_gpus(monkeypatch, count=1, name=name, capability=capability, memory_gib=memory)
    policy = resolve(TrainConfig(device="auto"), DataConfig())
    assert (policy.amp_dtype, policy.compile, policy.channels_last) == (amp, compiled, channels_last)
    assert policy.needs_scaler == (amp is torch.float16)
    assert tf32_on() == (tf32, tf32)
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
    assert reasons[1] == ("torch.compile off: the P100-PCIE-16GB (sm_60) is too old for Triton "
                          "(torch.compile needs sm_70+)")


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


@pytest.mark.parametrize("gpu", ["V100", "T4"])
def test_compile_is_eager_below_sm80_unless_forced(gpu, monkeypatch, restore_backends):
    """Triton supports sm_80+ officially (torch's own gate is sm_70): auto is eager on
    Volta/Turing until a measurement there says otherwise; yes stays allowed, with a note."""
    name, capability, memory, _ = USERS_GPUS[gpu]
    fake_gpus(monkeypatch, count=1, name=name, capability=capability, memory_gib=memory)
    policy = resolve(TrainConfig(device="cuda"), DataConfig())
    assert not policy.compile
    assert policy.reasons[1].startswith("torch.compile off: ") and "sm_80+" in policy.reasons[1]
    forced = resolve(TrainConfig(device="cuda", compile="yes"), DataConfig())
    assert forced.compile
    assert forced.reasons[1].startswith("torch.compile on: set by train.compile=yes")
    assert "not officially supported by Triton (sm_80+)" in forced.reasons[1]


@pytest.mark.parametrize("gpu", ["A100", "H100"])
def test_compile_stays_on_from_sm80(gpu, monkeypatch, restore_backends):
    name, capability, memory, _ = USERS_GPUS[gpu]
    fake_gpus(monkeypatch, count=1, name=name, capability=capability, memory_gib=memory)
    policy = resolve(TrainConfig(device="cuda"), DataConfig())
    assert policy.compile and policy.reasons[1].startswith("torch.compile on: ")


def test_compile_augment_follows_the_compile_gate(monkeypatch, restore_backends):
    """The augmentation graph (fullgraph, Inductor) needs Triton as the model does: forcing it
    on a P100 is one line; on sm_7x it is allowed with the same note; off unless asked."""
    fake_gpus(monkeypatch, count=1, name="Tesla P100-PCIE-16GB", capability=(6, 0), memory_gib=16)
    with pytest.raises(ConfigError, match=r"train.compile_augment=yes but the P100-PCIE-16GB "
                                          r"\(sm_60\) is too old for Triton.*train.compile_augment=no"):
        resolve(TrainConfig(device="cuda", compile_augment="yes"), DataConfig())
    assert not resolve(TrainConfig(device="cuda"), DataConfig()).compile_augment
    fake_gpus(monkeypatch, count=1, name="Tesla T4", capability=(7, 5), memory_gib=15)
    policy = resolve(TrainConfig(device="cuda", compile_augment="yes"), DataConfig())
    assert policy.compile_augment
    assert any(r.startswith("compiled augmentation: set by train.compile_augment=yes")
               and "not officially supported by Triton (sm_80+)" in r for r in policy.reasons)
    assert not resolve(TrainConfig(device="cuda"), DataConfig()).compile_augment
    fake_gpus(monkeypatch, count=1)
    policy = resolve(TrainConfig(device="cuda", compile_augment="yes"), DataConfig())
    assert policy.compile_augment and not any("not officially" in r for r in policy.reasons)


def _help(key: str) -> str:
    from lowres.cli.options import option_rows

    (row,) = [r for r in option_rows("train") if r.path == f"train.{key}"]
    return row.doc


def _table_says(column: str, word=lambda value: value) -> list[str]:
    """What GENERATIONS says about a column, as `lowres options` must say it: each change
    going up the capabilities as 'VALUE from sm_XY', the oldest row's value as 'VALUE below'."""
    from lowres.train.device import GENERATIONS

    rows = sorted(GENERATIONS, key=lambda row: row.capability)
    phrases = [f"{word(getattr(rows[0], column))} below"]
    for older, row in zip(rows, rows[1:]):
        if getattr(row, column) != getattr(older, column):
            phrases.append(f"{word(getattr(row, column))} from sm_{row.capability[0]}{row.capability[1]}")
    return phrases


def test_the_help_text_says_what_the_table_says():
    """`lowres options` describes each auto choice from the GPU table and the CPU policy, so
    neither can change without the text failing this test."""
    yes_no = {True: "yes", False: "no"}.get
    cpu = resolve(TrainConfig(device="cpu"), DataConfig())
    for key, column, word, on_cpu in [
            ("precision", "precision", str, {None: "fp32", torch.bfloat16: "bf16"}[cpu.amp_dtype]),
            ("compile", "compile", yes_no, yes_no(cpu.compile)),
            ("channels_last", "channels_last", yes_no, yes_no(cpu.channels_last))]:
        text = _help(key)
        assert "GENERATIONS" in text, key
        for phrase in _table_says(column, word):
            assert phrase in text, (key, phrase, text)
        assert f"{on_cpu} on the CPU" in text, (key, text)
    assert "CUDA" not in _help("precision")  # no more "bf16 on CUDA"
    assert "sm_70+" in _help("compile_augment")  # the gate it shares with train.compile=yes
