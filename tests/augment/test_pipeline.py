"""Pipeline behaviour: types and shapes, normalisation, reproducibility, per-sample draws
and the probabilities of the random ops (large batches of tiny images)."""
import pytest
import torch

from lowres.augment import OPS, build_pipeline
from lowres.augment.pipeline import to_float
from lowres.config import SEED_STAGE1_AUGMENT, SEED_STAGE2_AUGMENT

MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
ALL_IMAGE_OPS = [
    {"op": "random_choice", "ops": [{"op": "hflip", "p": 0.25}, {"op": "vflip", "p": 0.25}]},
    {"op": "crop", "padding": 3, "padding_mode": "reflect"},
    {"op": "translate", "fraction": 0.1, "fill": [0.5, 0.5, 0.5]},
    {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    {"op": "grayscale", "p": 0.2},
    {"op": "gaussian_blur", "p": 0.5, "kernel_size": 3, "sigma": [0.1, 2.0]},
    {"op": "randaugment"},
    {"op": "trivialaugment"},
    {"op": "augmix"},
    {"op": "erasing", "value": "random"},
]


def batch(b=8, c=3, h=24, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (b,), generator=g))


def run(spec, images, labels, seed=0, num_classes=10):
    pipe = build_pipeline(spec, MEAN, STD, num_classes)
    return pipe.augment(images, labels, torch.Generator().manual_seed(seed))


def test_empty_spec_is_normalisation_only():
    images, labels = batch()
    pipe = build_pipeline([], MEAN, STD, 10)
    x, y = pipe(images, labels, torch.Generator().manual_seed(0))
    want = (to_float(images) - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, want)
    torch.testing.assert_close(pipe.normalize(images), want)
    torch.testing.assert_close(pipe.normalize(to_float(images)), want)
    assert y is labels and not pipe.mixes


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("spec", [[op] for op in ALL_IMAGE_OPS] + [ALL_IMAGE_OPS],
                         ids=lambda s: s[0]["op"] if len(s) == 1 else "all")
def test_every_op_gives_float_images_in_range(spec, channels):
    images, labels = batch(c=channels, h=20, w=28)
    x, y = run(spec, images, labels)
    assert x.dtype == torch.float32 and x.shape == images.shape
    assert torch.equal(y, labels)
    if spec[-1]["op"] != "erasing":  # random erasing noise may leave 0..1, like torchvision
        assert x.min() >= 0 and x.max() <= 1
    # Same answer from float input.
    x2, _ = run(spec, to_float(images), labels)
    torch.testing.assert_close(x, x2, atol=1e-5, rtol=0)


def test_same_seed_same_result_and_state_restore():
    images, labels = batch(b=16)
    pipe = build_pipeline(ALL_IMAGE_OPS + [{"op": "mixup_cutmix", "per_sample": True}], MEAN, STD, 10)
    g = torch.Generator().manual_seed(7)
    first = pipe(images, labels, g)
    state = g.get_state()
    second = pipe(images, labels, g)
    assert not torch.equal(first[0], second[0])
    again = pipe(images, labels, torch.Generator().manual_seed(7))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    g2 = torch.Generator()
    g2.set_state(state)
    resumed = pipe(images, labels, g2)
    assert torch.equal(second[0], resumed[0]) and torch.equal(second[1], resumed[1])


def tiny(b=4000):
    """b distinct tiny 1x4x4 images (strictly increasing pixels: every flip is visible)."""
    base = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4) * 10
    return base.expand(b, 1, 4, 4).clone(), torch.zeros(b, dtype=torch.long)


def close_to(fraction, target, b=4000):
    # 5 standard deviations of a binomial proportion.
    return abs(fraction - target) <= 5 * (target * (1 - target) / b) ** 0.5 + 1e-9


def test_flip_probabilities_and_seed_random_choice():
    images, labels = tiny()
    x = to_float(images)
    for op, dim in (("hflip", 3), ("vflip", 2)):
        out, _ = run([{"op": op, "p": 0.3}], images, labels)
        flipped = (out == x.flip(dim)).flatten(1).all(1).float().mean().item()
        assert close_to(flipped, 0.3)
    out, _ = run([SEED_STAGE1_AUGMENT[0]], images, labels)
    h = (out == x.flip(3)).flatten(1).all(1).float().mean().item()
    v = (out == x.flip(2)).flatten(1).all(1).float().mean().item()
    assert close_to(h, 0.125) and close_to(v, 0.125)  # each chosen half the time, then p=.25


def test_weighted_random_choice():
    images, labels = tiny()
    spec = [{"op": "random_choice", "weights": [3, 1],
             "ops": [{"op": "hflip", "p": 1.0}, {"op": "vflip", "p": 1.0}]}]
    out, _ = run(spec, images, labels)
    h = (out == (to_float(images)).flip(3)).flatten(1).all(1).float().mean().item()
    assert close_to(h, 0.75)


def test_grayscale_blur_erasing_probabilities():
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (4000, 3, 4, 4), generator=g, dtype=torch.uint8)
    labels = torch.zeros(4000, dtype=torch.long)
    x = to_float(images)
    out, _ = run([{"op": "grayscale", "p": 0.1}], images, labels)
    grey = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert close_to(grey.float().mean().item(), 0.1)
    out, _ = run([{"op": "gaussian_blur", "p": 0.4, "kernel_size": 3, "sigma": [0.5, 1.0]}], images, labels)
    assert close_to((out != x).flatten(1).any(1).float().mean().item(), 0.4)
    big = torch.full((4000, 3, 10, 10), 200, dtype=torch.uint8)
    out, _ = run([{"op": "erasing", "p": 0.5, "scale": [0.02, 0.33], "ratio": [1.0, 1.0]}],
                 big, labels)
    erased = out == 0
    assert close_to(erased.flatten(1).any(1).float().mean().item(), 0.5)
    # Square boxes of 1..3 pixels a side on a 10x10 image (round(sqrt(100 * scale))).
    sides = erased[:, 0].any(1).sum(1)[erased.flatten(1).any(1)]
    assert torch.equal(sides, erased[:, 0].any(2).sum(1)[erased.flatten(1).any(1)])
    assert sides.min() >= 1 and sides.max() <= 6


@pytest.mark.parametrize("spec", [{"op": "randaugment", "num_ops": 1}, {"op": "trivialaugment"}])
def test_auto_augment_draws_per_sample(spec):
    # 512 copies of one image: a per-batch draw would give one result for all of them.
    images = torch.randint(0, 256, (1, 3, 12, 12), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8).expand(512, 3, 12, 12).contiguous()
    out, _ = run([spec], images, torch.zeros(512, dtype=torch.long))
    unchanged = (out == to_float(images)).flatten(1).all(1).float().mean().item()
    # Identity is 1 of 14 ops; every other op changes this image at these magnitudes
    # (TrivialAugment's bin 0 is a zero magnitude: some more unchanged there).
    assert 0.03 < unchanged < 0.2
    # RandAugment at a fixed magnitude has 14 ops x signs, about 23 possible results.
    assert torch.unique(out.flatten(1), dim=0).shape[0] >= 15


def test_randaugment_uses_every_op():
    from lowres.augment import auto_ops, sampling
    g = torch.Generator().manual_seed(0)
    drawn = sampling.integers(g, 4000, 0, len(auto_ops.ops_for("randaugment")))
    counts = torch.bincount(drawn, minlength=14).float() / 4000
    assert all(close_to(c.item(), 1 / 14) for c in counts)


@pytest.mark.parametrize("op", ["mixup", "cutmix", "mixup_cutmix"])
@pytest.mark.parametrize("per_sample", [False, True])
def test_mix_targets(op, per_sample):
    images, labels = batch(b=32, h=16, w=16)
    pipe = build_pipeline([{"op": "hflip"}, {"op": op, "per_sample": per_sample}], MEAN, STD, 10)
    assert pipe.mixes
    x, y = pipe.augment(images, labels, torch.Generator().manual_seed(1))
    assert y.shape == (32, 10) and y.dtype == torch.float32
    torch.testing.assert_close(y.sum(1), torch.ones(32))
    own = y.gather(1, labels[:, None]).squeeze(1)
    partner = y.gather(1, labels.roll(1)[:, None]).squeeze(1)
    same = labels == labels.roll(1)
    assert torch.all(same | (own + partner - 1).abs().le(1e-5))
    if per_sample:
        assert torch.unique(own[~same]).numel() > 3


def test_mix_probability_zero_gives_one_hot():
    images, labels = batch(b=16)
    x, y = run([{"op": "mixup", "p": 0.0}], images, labels)
    assert torch.equal(y, torch.nn.functional.one_hot(labels, 10).float())
    assert torch.equal(x, to_float(images))


def test_seed_pipelines_run_on_odd_sizes():
    images, labels = batch(b=5, h=13, w=17)
    for spec in (SEED_STAGE1_AUGMENT, SEED_STAGE2_AUGMENT):
        x, _ = run(spec, images, labels)
        assert x.shape == (5, 3, 13, 17)


def test_every_op_is_covered_here():
    covered = {s["op"] for s in ALL_IMAGE_OPS} | {"hflip", "vflip", "mixup", "cutmix", "mixup_cutmix"}
    assert covered == set(OPS)
