"""DDP details (train/distributed.py): a CUDA rank binds its process group to its GPU
(`device_id`), a CPU/gloo rank passes no device; each of N ranks on a machine takes 1/N of
its cores unless OMP_NUM_THREADS is set (torch's elastic launcher, which `--devices` uses,
sets none; torchrun sets 1)."""
import json
import os

import pytest
import torch
import torch.distributed as tdist

from run_configs import write_config
from lowres import api
from lowres.train import distributed


@pytest.fixture
def fake_group(monkeypatch):
    """init_process_group records its arguments instead of starting a group."""
    calls = []

    def init_process_group(*args, **kwargs):
        calls.append((args, kwargs))

    monkeypatch.setattr(tdist, "is_initialized", lambda: False)
    monkeypatch.setattr(tdist, "init_process_group", init_process_group)
    threads = torch.get_num_threads()
    yield calls
    torch.set_num_threads(threads)


def rank_env(monkeypatch, rank, cuda, omp=None, backend=None):
    for key, value in {"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    for key, value in {"OMP_NUM_THREADS": omp, "LOWRES_BACKEND": backend}.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)


def test_a_cuda_rank_binds_its_process_group_to_its_gpu(monkeypatch, fake_group):
    rank_env(monkeypatch, 1, cuda=True)
    ctx = distributed.init()
    assert (ctx.rank, ctx.local_rank, ctx.world_size) == (1, 1, 2)
    assert fake_group == [((), {"backend": "nccl", "device_id": torch.device("cuda", 1)})]


@pytest.mark.parametrize("cuda, backend", [(False, None), (True, "gloo")])
def test_a_cpu_rank_passes_no_device(monkeypatch, fake_group, cuda, backend):
    rank_env(monkeypatch, 0, cuda=cuda, backend=backend)  # no GPU, or GPUs but gloo asked for
    distributed.init()
    assert fake_group == [((), {"backend": "gloo"})]


@pytest.mark.parametrize("env, cpus, threads", [
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}, 4, 2),  # 2 T4s on a 4-vCPU Kaggle box
    ({"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "8"}, 4, 1),  # never 0
    ({"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}, 16, 8),  # 2 machines of 2 ranks
    ({"WORLD_SIZE": "2"}, 4, 2),  # no LOCAL_WORLD_SIZE: all ranks here
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}, None, 1),  # cores unknown
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "3"}, 4, None),  # as set
    ({"WORLD_SIZE": "1"}, 4, None), ({}, 4, None)])  # one process: as torch chose
def test_each_rank_gets_its_share_of_the_cores(env, cpus, threads):
    assert distributed.rank_threads(env, cpus) == threads


def test_a_cuda_rank_takes_its_share_of_the_cores(monkeypatch, fake_group):
    """A CUDA rank: device.py sets threads on CPU devices only, so without this each of the
    ranks would use every core."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    rank_env(monkeypatch, 0, cuda=True)
    torch.set_num_threads(3)
    distributed.init()
    assert torch.get_num_threads() == 2
    rank_env(monkeypatch, 0, cuda=True, omp="3")  # the user's OMP_NUM_THREADS stands
    torch.set_num_threads(3)  # as torch read it at start-up
    distributed.init()
    assert torch.get_num_threads() == 3


def test_two_gloo_ranks_started_by_devices_share_the_cores(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv("LOWRES_BACKEND", "gloo")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cfg = write_config(tmp_path / "c.yaml", tiny_data,
                       stages=[{"epochs": 1, "scheduler": {"name": "constant"}, "augment": []}])
    run = api.train(cfg, run_dir=tmp_path / "run", devices=2)
    assert run.state == "finished"
    env = json.loads((tmp_path / "run" / "env.json").read_text())  # rank 0's
    assert env["torch_threads"] == max(1, os.cpu_count() // 2)
