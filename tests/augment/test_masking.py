"""The two ways an op reaches the samples that drew it (base.apply_masked): "subset"
(gather the samples; CPU) and "where" (whole batch + torch.where; CUDA, no
synchronisation). Both must give the same images from the same draws, and the where path
must never read device values on the host: checked by running the pipeline on the meta
device, where nonzero, boolean indexing, .item(), .tolist() and bool(tensor) all raise,
and by counting host-to-device copies once the constants are cached."""
import types

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lowres.augment import auto_apply, base, build_pipeline, geometry_ops, sampling
from lowres.augment.auto_ops import AUTO_OPS
from lowres.augment.base import apply_grouped, apply_grouped_rounds, apply_masked, forced_masking

MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
SPECS = [
    {"op": "hflip"}, {"op": "vflip", "p": 0.3},
    {"op": "random_choice", "ops": [{"op": "hflip", "p": 0.25}, {"op": "vflip", "p": 0.25}]},
    {"op": "random_choice", "weights": [1, 0, 2, 1, 1], "ops": [
        {"op": "crop", "padding": 3, "padding_mode": "reflect"}, {"op": "grayscale", "p": 1.0},
        {"op": "randaugment", "num_ops": 2}, {"op": "erasing", "value": "random"},
        {"op": "augmix", "mixture_width": 2}]},
    {"op": "crop", "padding": 3, "padding_mode": "edge"},
    {"op": "crop", "size": [16, 20], "padding": 2},
    {"op": "translate", "fraction": 0.2, "fill": [0.5, 0.2, 0.9]},
    {"op": "translate", "pixels": 3, "p": 0.5},
    {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    {"op": "grayscale", "p": 0.5},
    {"op": "gaussian_blur", "p": 0.5, "kernel_size": [5, 3], "sigma": [0.1, 2.0]},
    {"op": "randaugment", "num_ops": 3},
    {"op": "randaugment", "interpolation": "bilinear", "fill": [0.3, 0.6, 0.1]},
    {"op": "trivialaugment"},
    {"op": "augmix"},
    {"op": "augmix", "chain_depth": 2, "all_ops": False, "interpolation": "nearest"},
    {"op": "erasing", "value": "zeros", "p": 0.7},
    {"op": "erasing", "value": "mean"},
    {"op": "erasing", "value": "random"},
    {"op": "mixup_cutmix", "per_sample": True},
]


def batch(b=64, c=3, h=20, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (b,), generator=g))


def run(spec, images, labels, mode):
    pipe = build_pipeline(spec, MEAN, STD, 10)
    g = torch.Generator().manual_seed(11)
    with forced_masking(mode):
        x, y = pipe(images, labels, g)
    return x, y, g.get_state()


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("spec", SPECS + [SPECS[2:3] + SPECS[8:10] + SPECS[11:12] + SPECS[16:17]],
                         ids=lambda s: s["op"] if isinstance(s, dict) else "chain")
def test_subset_and_where_give_identical_results(spec, channels):
    spec = spec if isinstance(spec, list) else [spec]
    images, labels = batch(c=channels)
    x1, y1, state1 = run(spec, images, labels, "subset")
    x2, y2, state2 = run(spec, images, labels, "where")
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert torch.equal(state1, state2)  # the same random numbers were drawn
    x3, _, _ = run(spec, images, labels, None)  # CPU default: subset
    assert torch.equal(x1, x3)


def test_helpers_with_explicit_mode():
    x = torch.arange(6 * 2 * 2 * 2, dtype=torch.float32).reshape(6, 2, 2, 2)
    scale = torch.arange(6, dtype=torch.float32)
    fn = lambda t, idx: t * scale[idx].reshape(-1, 1, 1, 1)  # noqa: E731
    selected = torch.tensor([True, False, True, True, False, False])
    want = torch.where(selected.reshape(-1, 1, 1, 1), x * scale.reshape(-1, 1, 1, 1), x)
    for mode in ("subset", "where"):
        assert torch.equal(apply_masked(x.clone(), selected, fn, mode), want)
        assert torch.equal(apply_masked(x.clone(), torch.zeros(6, dtype=torch.bool), fn, mode), x)
    group = torch.tensor([2, -1, 0, 2, 5, 0])
    fns = {0: lambda t, idx: t + 100, 2: fn}
    want = x.clone()
    want[[0, 3]] = fn(x[[0, 3]], torch.tensor([0, 3]))
    want[[2, 5]] += 100
    for mode in ("subset", "where"):
        assert torch.equal(apply_grouped(x.clone(), group, fns, mode), want)
    with pytest.raises(ValueError), forced_masking("sometimes"):
        pass


class _HostTraffic(TorchDispatchMode):
    """Records ops that move host data onto the (meta) device."""

    def __init__(self):
        super().__init__()
        self.copies = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
        on_host = [t for t in tensors if t.device.type == "cpu" and t.dim() > 0]
        target = kwargs.get("device")
        if on_host and (any(t.device.type == "meta" for t in tensors) or
                        (target is not None and torch.device(target).type == "meta")):
            self.copies.append(str(func))
        return func(*args, **kwargs)


def _meta_sampling(monkeypatch):
    """Random draws without data on the meta device (the generator is only a device tag)."""
    def dev(g):
        return g.device
    monkeypatch.setattr(sampling, "uniform", lambda g, n, lo, hi: torch.empty(n, device=dev(g)))
    monkeypatch.setattr(sampling, "coin", lambda g, n, p: torch.empty(n, device=dev(g)) < p)
    monkeypatch.setattr(sampling, "integers", lambda g, n, lo, hi: torch.empty(
        n, dtype=torch.long, device=dev(g)))
    monkeypatch.setattr(sampling, "categorical", lambda g, n, w: torch.empty(
        n, dtype=torch.long, device=dev(g)))
    monkeypatch.setattr(sampling, "normal", lambda g, shape: torch.empty(shape, device=dev(g)))
    monkeypatch.setattr(sampling, "beta", lambda g, n, a: torch.empty(n, device=dev(g)))
    monkeypatch.setattr(sampling, "dirichlet", lambda g, n, a, k: torch.empty(n, k, device=dev(g)))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["op"])
def test_accelerator_path_needs_no_host_values(spec, monkeypatch):
    """On a non-CPU device the pipeline must run with fixed shapes and no host reads: a
    CUDA run of the same code would never synchronise inside a step. (Draws are stubbed:
    torch's own random functions do not read device values.)"""
    _meta_sampling(monkeypatch)
    images = torch.empty(16, 3, 20, 24, dtype=torch.uint8, device="meta")
    labels = torch.empty(16, dtype=torch.long, device="meta")
    generator = types.SimpleNamespace(device=torch.device("meta"))
    pipe = build_pipeline([spec], MEAN, STD, 10)
    assert base.masking_mode(images.device) == "where"
    pipe(images, labels, generator)  # first call: constants are made and cached
    with _HostTraffic() as traffic:
        x, y = pipe(images, labels, generator)
    assert traffic.copies == []
    assert x.shape[:2] == images.shape[:2] and x.device.type == "meta"


def test_grouped_rounds_match_one_round_at_a_time():
    """apply_grouped_rounds keeps the batch sorted between rounds (subset): the same result
    as one apply_grouped per round, also with functions that overwrite their view."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(40, 2, 3, 3, generator=g)
    groups = [torch.randint(-1, 4, (40,), generator=g) for _ in range(3)]
    scale = torch.rand(40, generator=g)

    def fns(inplace):
        def mul(t, idx):
            s = scale[idx].reshape(-1, 1, 1, 1)
            return t.mul_(s) if inplace else t * s
        return {0: mul, 2: lambda t, idx: t.flip(3), 3: lambda t, idx: (t.add_(1.0) if inplace else t + 1.0)}

    want = x.clone()
    for group in groups:
        want = apply_grouped(want, group, fns(False), "where")
    for mode, inplace in (("subset", True), ("subset", False), ("where", False)):
        rounds = [(group, fns(inplace)) for group in groups]
        assert torch.equal(apply_grouped_rounds(x.clone(), rounds, mode), want)


def test_cached_geometric_sources_match_the_matrices():
    g = torch.Generator().manual_seed(5)
    op_index = torch.randint(1, 6, (50,), generator=g)  # the geometric ops
    assert all(AUTO_OPS[k].geometric for k in range(1, 6))
    magnitude = torch.randn(50, generator=g, dtype=torch.float64).mul_(3.0).round_().mul_(0.1)
    for _ in range(2):  # computed, then from the cache
        got = auto_apply.geometric_sources(AUTO_OPS, op_index, magnitude, 9, 7)
        matrix = auto_apply.geometric_matrices(AUTO_OPS, op_index, magnitude, 9, 7)
        assert torch.equal(got, geometry_ops._nearest_source(matrix, 9, 7))


@pytest.mark.parametrize("channels", [3, 1])
def test_inplace_ops_give_the_same_numbers(channels):
    """The auto-augment ops with inplace=True (subset mode) equal their plain forms bit for
    bit and write into the tensor they are given."""
    g = torch.Generator().manual_seed(7)
    x = torch.rand(12, channels, 10, 11, generator=g)
    x[:, :, :2] = 0.7  # ties with a solarize threshold
    magnitude = torch.linspace(-0.9, 0.9, 12, dtype=torch.float64)
    for op in AUTO_OPS:
        if op.pixels is None:
            continue
        mag = {"Posterize": torch.arange(12, dtype=torch.float64) % 8 + 1,
               "Solarize": torch.full((12,), 0.7, dtype=torch.float64)}.get(op.name, magnitude)
        want = op.pixels(x, mag, False)
        target = x.clone()
        got = op.pixels(target, mag, True)
        assert got.data_ptr() == target.data_ptr() and torch.equal(got, want), op.name
    op_index = torch.arange(12) % 5 + 1
    source = auto_apply.geometric_sources(AUTO_OPS, op_index, magnitude, 10, 11)
    want = geometry_ops.warp_nearest_from(x, source, (0.2,))
    target = x.clone()
    got = geometry_ops.warp_nearest_from(target, source, (0.2,), inplace=True)
    assert got.data_ptr() == target.data_ptr() and torch.equal(got, want)
