import torch
import torch.nn.functional as F

from lowres.config import DataConfig, TrainConfig
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


def test_a_failing_compiled_model_falls_back_to_eager_with_one_line(capsys):
    policy = resolve(TrainConfig(device="cpu", compile="no"), DataConfig())
    engine = Engine(torch.nn.Linear(3, 2), policy, label_smoothing=0.0)

    def broken(x):
        raise RuntimeError("inductor could not build a kernel\nlong details")

    engine.forward = broken  # what a compile failure at the first call looks like
    out = engine._call(engine.forward, torch.randn(4, 3))
    assert out.shape == (4, 2) and engine.forward is engine.train_model
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch.compile failed" in err[0]


def test_cpu_policy_defaults():
    policy = resolve(TrainConfig(device="auto"), DataConfig())
    if not torch.cuda.is_available():
        assert policy.device.type == "cpu" and policy.amp_dtype is None and not policy.compile
        assert policy.channels_last
