import copy

import pytest
import torch
import torch.nn.functional as F

from lowres.config import DataConfig, TrainConfig
from lowres.errors import LowresError
from lowres.train.device import resolve
from lowres.train.engine import Engine, soft_cross_entropy


def test_soft_targets_with_smoothing_equal_the_hard_label_loss():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    soft = F.one_hot(labels, 5).float()
    for eps in (0.0, 0.1):
        assert torch.allclose(soft_cross_entropy(logits, soft, eps),
                              F.cross_entropy(logits, labels, label_smoothing=eps), atol=1e-6)


def _compiled_engine(monkeypatch, model, backend):
    """An Engine whose torch.compile uses `backend` (fast, and able to fail on purpose)."""
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: real_compile(m, backend=backend))
    policy = resolve(TrainConfig(device="cpu", compile="yes"), DataConfig())
    return Engine(model, policy, label_smoothing=0.0)


def _failing_backward_backend():
    """Compiles the forward, fails to compile the backward: Inductor compiles the backward
    lazily, at the first backward(), so this is where such a failure surfaces."""
    from torch._dynamo.backends.common import aot_autograd

    def backward_compiler(gm, example_inputs):
        raise RuntimeError("inductor could not build a backward kernel\nlong details")
    return aot_autograd(fw_compiler=lambda gm, example_inputs: gm.forward,
                        bw_compiler=backward_compiler)


def test_a_backward_compile_failure_falls_back_to_eager_with_one_line(monkeypatch, capsys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    reference = copy.deepcopy(model)
    engine = _compiled_engine(monkeypatch, model, _failing_backward_backend())
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    opt = torch.optim.SGD(engine.module.parameters(), lr=0.1)
    loss, logits = engine.train_step(x, y, opt)
    assert not engine.compiled  # eager from now on
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch.compile failed" in err[0] and "backward kernel" in err[0]
    # The step that fell back is a complete, correct eager step.
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    ref_loss = torch.nn.functional.cross_entropy(reference(x), y)
    ref_loss.backward()
    ref_opt.step()
    assert torch.allclose(loss, ref_loss.detach())
    for a, b in zip(engine.module.parameters(), reference.parameters()):
        assert torch.allclose(a, b)


class ShapeBug(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x.reshape(x.shape[0], 5))  # wrong on purpose: 3 features, not 5


def test_a_model_error_is_reported_as_itself_not_as_a_compile_failure(monkeypatch, capsys):
    engine = _compiled_engine(monkeypatch, ShapeBug(), "eager")
    opt = torch.optim.SGD(engine.module.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="shape"):
        engine.train_step(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), opt)
    assert "torch.compile failed" not in capsys.readouterr().err


class OutOfMemory(torch.nn.Module):
    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_is_one_line_naming_the_batch_size():
    policy = resolve(TrainConfig(device="cpu", compile="no"), DataConfig())
    engine = Engine(OutOfMemory(), policy, label_smoothing=0.0)
    with pytest.raises(LowresError, match="out of memory on cpu at 4 images per step: lower "
                                          "train.batch_size"):
        engine.train_step(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]),
                          torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))


def test_cpu_policy_defaults():
    policy = resolve(TrainConfig(device="auto"), DataConfig())
    if not torch.cuda.is_available():
        assert policy.device.type == "cpu" and policy.amp_dtype is None and not policy.compile
        assert policy.channels_last


def test_an_epoch_with_a_leftover_never_recompiles(monkeypatch):
    """11 images at batch 4: the loader yields only full batches, so the compiled model
    sees one shape and compiles once (a short last batch used to recompile it)."""
    import numpy as np
    import torch._dynamo

    from lowres.augment import build_pipeline
    from lowres.config import SchedulerConfig
    from lowres.data.loader import EpochLoader
    from lowres.train.schedules import Schedule

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    engine = _compiled_engine(monkeypatch, model, "eager")
    images = np.random.default_rng(0).integers(0, 255, (11, 3, 4, 4), dtype=np.uint8)
    loader = EpochLoader(images, np.arange(11) % 2, 4, torch.device("cpu"), True, seed=0)
    opt = torch.optim.SGD(engine.module.parameters(), lr=0.1)
    pipeline = build_pipeline([{"op": "hflip"}], (0.5,) * 3, (0.25,) * 3, 2)
    schedule = Schedule(SchedulerConfig(name="constant"), 0.1, loader.steps_per_epoch, 2)
    for epoch in range(2):
        engine.train_epoch(loader, epoch, pipeline, opt, schedule, 0, torch.Generator())
    assert engine.compiled
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # compiled once
