"""env.json on a GPU names the card, its compute capability and its memory (faked card)."""
from types import SimpleNamespace

import torch

from lowres.run.environment import environment


def test_env_names_the_gpu_its_capability_and_memory(monkeypatch):
    props = SimpleNamespace(name="Tesla T4", major=7, minor=5, total_memory=15 << 30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    env = environment("cuda:0")
    assert (env["gpu"], env["gpu_capability"], env["gpu_memory_gib"]) == ("Tesla T4", "sm_75", 15.0)
    assert environment("cpu").get("gpu") is None


CU130_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]


def _fake_p100(monkeypatch):
    props = SimpleNamespace(name="Tesla P100-PCIE-16GB", major=6, minor=0, total_memory=16 << 30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(CU130_ARCHS))
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)


def test_env_records_the_archs_torch_was_built_for(monkeypatch):
    """What to read when a GPU has no kernels in the installed torch (sm_60 on cu130)."""
    _fake_p100(monkeypatch)
    assert environment("cuda:0")["cuda_arch_list"] == CU130_ARCHS
    assert "cuda_arch_list" not in environment("cpu")


def test_gpu_check_records_the_archs_and_whether_this_gpu_is_among_them(monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    _fake_p100(monkeypatch)
    monkeypatch.setattr(gpu_check.subprocess, "run", lambda *a, **k: SimpleNamespace(stdout="550.1\n"))
    info = gpu_check.environment(True)
    assert info["cuda_arch_list"] == CU130_ARCHS and info["kernels_for_this_gpu"] is False
    assert '"cuda_arch_list"' in gpu_check.markdown({"date": "d", "environment": info, "sections": {}})
