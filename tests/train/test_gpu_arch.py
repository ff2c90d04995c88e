"""GPUs the installed torch cannot drive, TF32's switches, the compile fallback's message and
the CPU fallback of train.device=auto, on pretend GPUs (nothing runs on them)."""
import warnings
from types import SimpleNamespace

import pytest
import torch

from lowres.basics import compat
from lowres.cli import main
from lowres.config import DataConfig, TrainConfig
from lowres.errors import ConfigError
from lowres.train import device
from lowres.train.device import resolve
from run_configs import write_config
from test_device_policy import (CU126_ARCHS, CU130_ARCHS, NEW_TF32_API, USERS_GPUS, fake_gpus,
                                restore_backends)  # noqa: F401 (the fixture below)

pytestmark = pytest.mark.usefixtures("restore_backends")  # resolve sets cuDNN and TF32 switches


def fake_users_gpu(monkeypatch, gpu: str, arch_list, wheel: str = "cu130") -> None:
    name, capability, memory, _ = USERS_GPUS[gpu]
    fake_gpus(monkeypatch, count=1, name=name, capability=capability, memory_gib=memory,
              arch_list=arch_list, torch_version=f"2.14.1+{wheel}",
              cuda_version={"cu126": "12.6", "cu130": "13.0"}[wheel])


# --- 1. kernels for the GPU in this torch ------------------------------------------------

@pytest.mark.parametrize("arch_list, capability, runs", [
    (CU130_ARCHS, (6, 0), False),  # P100 on Kaggle's torch: no sm_6x binary, PTX only for 12.0
    (CU130_ARCHS, (7, 0), False),  # V100 on cu130
    (CU130_ARCHS, (7, 5), True),  # T4
    (CU130_ARCHS, (8, 0), True),  # A100
    (CU130_ARCHS, (8, 9), True),  # L4, RTX 4090: the sm_86 binary runs on 8.9
    (CU130_ARCHS, (9, 0), True),  # H100
    (CU130_ARCHS, (12, 1), True),  # sm_120 binary, higher minor
    (CU126_ARCHS, (6, 0), True),
    (CU126_ARCHS, (6, 1), True),  # GTX 10xx: sm_60 binary, same major, higher minor
    (CU126_ARCHS, (7, 0), True),
    (CU126_ARCHS, (10, 0), False),  # Blackwell on cu126: no sm_10x, no PTX
    (["sm_86"], (8, 0), False),  # a binary never runs on a lower minor
    (["sm_80"], (9, 0), False),  # nor on another major
    (["sm_80", "compute_80"], (9, 0), True),  # PTX: JIT-compiled for any newer capability
    (["compute_80"], (7, 5), False),  # but never for an older one
    (["sm_90a"], (9, 0), True),  # arch-specific: exactly that capability
    (["sm_90a", "compute_90a"], (10, 0), False),
    ([], (6, 0), True),  # torch without CUDA, or an arch list it could not read: never blocks
    (["gfx90a", "gfx942"], (6, 0), True),  # a format we do not know: never blocks
])
def test_which_kernels_run_on_which_gpu(arch_list, capability, runs):
    assert device.kernels_run_on(arch_list, capability) is runs


@pytest.mark.parametrize("gpu, sm", [("P100", "sm_60"), ("V100", "sm_70")])
def test_a_gpu_this_torch_has_no_kernels_for_is_one_line_before_anything_is_built(
        gpu, sm, monkeypatch):
    fake_users_gpu(monkeypatch, gpu, CU130_ARCHS)
    with pytest.raises(ConfigError) as caught:
        resolve(TrainConfig(device="auto"), DataConfig())
    text = str(caught.value)
    assert "\n" not in text
    name = USERS_GPUS[gpu][0]
    for part in (name, sm, "torch 2.14.1+cu130", "CUDA 13.0", " ".join(CU130_ARCHS),
                 f"torch.cuda.get_arch_list() includes {sm}", "cu126", "train.device=cpu"):
        assert part in text, (part, text)
    # Kaggle's other GPU, the T4 (sm_75), has kernels in this torch: say so on a P100.
    assert ("T4" in text) is (gpu == "P100")


@pytest.mark.parametrize("gpu", ["T4", "A100", "H100"])
def test_gpus_this_torch_has_kernels_for_resolve(gpu, monkeypatch):
    fake_users_gpu(monkeypatch, gpu, CU130_ARCHS)
    assert resolve(TrainConfig(device="cuda"), DataConfig()).gpu.name == USERS_GPUS[gpu][0]


def test_the_same_p100_resolves_on_a_torch_with_sm60(monkeypatch):
    fake_users_gpu(monkeypatch, "P100", CU126_ARCHS, wheel="cu126")
    assert resolve(TrainConfig(device="cuda"), DataConfig()).amp_dtype is None


def test_an_unknown_arch_list_does_not_block(monkeypatch):
    fake_users_gpu(monkeypatch, "P100", [])
    assert resolve(TrainConfig(device="cuda"), DataConfig()).gpu.sm == "sm_60"


def test_the_cli_says_it_in_one_line_with_a_nonzero_exit(tiny_data, tmp_path, monkeypatch, capsys):
    fake_users_gpu(monkeypatch, "P100", CU130_ARCHS)
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    code = main(["train", str(cfg), "train.device=auto", "--run-dir", str(tmp_path / "run"),
                 "--dry-run"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert "sm_60" in err[0] and "get_arch_list" in err[0]
    assert not (tmp_path / "run").exists()


# --- 4. TF32 through compat.set_tf32 -----------------------------------------------------

@pytest.mark.skipif(not NEW_TF32_API, reason="this torch has only allow_tf32")
@pytest.mark.parametrize("enabled, value", [(True, "tf32"), (False, "ieee")])
def test_set_tf32_uses_fp32_precision_without_warnings(enabled, value, monkeypatch):
    def legacy(*args):
        raise AssertionError("the legacy allow_tf32 API was used")

    monkeypatch.setattr(torch._C, "_set_cublas_allow_tf32", legacy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compat.set_tf32(enabled)
    assert torch.backends.cuda.matmul.fp32_precision == value
    assert torch.backends.cudnn.conv.fp32_precision == value
    assert torch.backends.cudnn.rnn.fp32_precision == value


@pytest.mark.skipif(not NEW_TF32_API, reason="this torch has only allow_tf32")
@pytest.mark.parametrize("gpu, value", [("T4", "ieee"), ("A100", "tf32"), ("H100", "tf32")])
def test_resolve_sets_tf32_through_the_new_switches(gpu, value, monkeypatch):
    # A notebook that set the new API before: mixing the APIs makes torch raise on a read.
    torch.backends.cudnn.rnn.fp32_precision = "ieee" if value == "tf32" else "tf32"
    fake_users_gpu(monkeypatch, gpu, CU130_ARCHS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve(TrainConfig(device="cuda"), DataConfig())
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
            torch.backends.cudnn.rnn.fp32_precision) == (value,) * 3


@pytest.mark.parametrize("enabled", [True, False])
def test_set_tf32_on_a_torch_without_fp32_precision_uses_allow_tf32(enabled, monkeypatch):
    """torch 2.4 (the oldest supported) has neither cudnn.conv nor matmul.fp32_precision."""
    matmul, cudnn = SimpleNamespace(allow_tf32=None), SimpleNamespace(allow_tf32=None)
    with monkeypatch.context() as patch:  # undone before restore_backends reads the real ones
        patch.setattr(torch.backends.cuda, "matmul", matmul)
        patch.setattr(torch.backends, "cudnn", cudnn)
        compat.set_tf32(enabled)
    assert matmul.allow_tf32 is enabled and cudnn.allow_tf32 is enabled
    assert not hasattr(matmul, "fp32_precision") and not hasattr(cudnn, "conv")


# --- 2. the compile fallback names the compiler's own error ------------------------------

def _backend_failure() -> Exception:
    from torch._dynamo.exc import BackendCompilerFailed

    inner = RuntimeError("Found Tesla P100-PCIE-16GB which is too old to be supported by the "
                         "triton GPU compiler\nmore details")
    try:
        return BackendCompilerFailed(lambda gm, example_inputs: gm, inner, None)
    except TypeError:  # torch 2.4: (backend_fn, inner_exception)
        return BackendCompilerFailed(lambda gm, example_inputs: gm, inner)


def test_a_compile_failure_line_names_the_inner_error(monkeypatch, capsys):
    exc = _backend_failure()
    assert "raised:" in str(exc).splitlines()[0]  # all the old line showed
    policy = resolve(TrainConfig(device="cpu", compile="yes"), DataConfig())
    from lowres.train.engine import Engine

    engine = Engine(torch.nn.Linear(3, 2), policy, label_smoothing=0.0)

    def fails(x):
        raise exc
    engine.forward = fails
    opt = torch.optim.SGD(engine.module.parameters(), lr=0.1)
    engine.train_step(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), opt)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("lowres: torch.compile failed (BackendCompilerFailed")
    assert "RuntimeError: Found Tesla P100-PCIE-16GB which is too old" in line
    assert line.endswith("; continuing without it")


def test_a_chained_cause_is_named_too(monkeypatch, capsys):
    from lowres.errors import compile_failure

    try:
        try:
            raise ValueError("the inner reason")
        except ValueError as inner:
            raise RuntimeError("wrapper raised:\nValueError: the inner reason") from inner
    except RuntimeError as outer:
        assert compile_failure(outer) == "RuntimeError: ValueError: the inner reason"
    assert compile_failure(KeyError("x")) == "KeyError: 'x'"


# --- 3. the augmentation's own fallback (evidence: it has one) ---------------------------

def test_a_failing_augmentation_graph_falls_back_to_eager_with_one_line(capsys):
    from lowres.augment import build_pipeline

    pipeline = build_pipeline([{"op": "hflip", "p": 0.5}], (0.5,) * 3, (0.25,) * 3, 4)
    eager = pipeline._apply

    def too_old(x, drawn):
        raise _backend_failure()
    pipeline._apply = too_old
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    x, _ = pipeline(images, torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 8, 8) and pipeline._apply == eager
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "compiling the augmentation failed" in line


# --- 5. train.device=auto without a usable GPU -------------------------------------------

@pytest.fixture
def device_node(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    node = tmp_path / "nvidia0"
    monkeypatch.setattr(device, "NVIDIA_DEVICE_NODES", (str(node), str(tmp_path / "nvidiactl")))
    return node


def test_a_gpu_torch_cannot_use_is_one_loud_line(device_node, monkeypatch, capsys):
    device_node.touch()
    monkeypatch.setattr(torch.version, "cuda", None)
    assert resolve(TrainConfig(device="auto"), DataConfig()).device == torch.device("cpu")
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("lowres: warning: ") and str(device_node) in line
    assert "CPU-only build" in line and "torch.version.cuda is None" in line
    assert "training on the CPU" in line


def test_the_loud_line_carries_cudas_own_reason(device_node, monkeypatch, capsys):
    device_node.touch()
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setattr(torch._C, "_cuda_getDeviceCount", lambda: 0, raising=False)

    def init():
        raise RuntimeError("The NVIDIA driver on your system is too old (found version 11040).\n"
                           "Please update your GPU driver")
    monkeypatch.setattr(torch.cuda, "_lazy_init", init)
    resolve(TrainConfig(device="auto"), DataConfig())
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "The NVIDIA driver on your system is too old (found version 11040)" in line
    assert "training on the CPU" in line


def test_hidden_gpus_are_named_as_the_reason(device_node, monkeypatch, capsys):
    device_node.touch()
    monkeypatch.setattr(torch.version, "cuda", "12.6")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    resolve(TrainConfig(device="auto"), DataConfig())
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "CUDA_VISIBLE_DEVICES hides every GPU" in line


def test_no_device_node_or_an_explicit_cpu_is_silent(device_node, monkeypatch, capsys):
    resolve(TrainConfig(device="auto"), DataConfig())
    device_node.touch()
    resolve(TrainConfig(device="cpu"), DataConfig())
    assert capsys.readouterr().err == ""
