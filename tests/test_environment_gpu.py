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
