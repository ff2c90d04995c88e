"""The device policy on a pretend CUDA machine: what a GPU user's config resolves to."""
import pytest
import torch

from lowres.config import DataConfig, TrainConfig
from lowres.errors import ConfigError
from lowres.augment.pipeline import same_device
from lowres.train.device import resolve


@pytest.fixture
def two_gpus(monkeypatch):
    """torch.cuda answers as on a machine with 2 GPUs (nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (80 << 30, 80 << 30))
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    yield
    (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
     torch.backends.cuda.matmul.allow_tf32) = saved


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
