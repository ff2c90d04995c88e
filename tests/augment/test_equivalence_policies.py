"""Auto-augment ops, colour jitter and MixUp/CutMix vs torchvision, with fixed parameters.

Each auto-augment op (a row of auto_ops.AUTO_OPS) runs on a batch with one signed
magnitude per sample, through the policies' own dispatch, and is compared with
torchvision's own op dispatcher (`_apply_image_or_video_transform`, the code
RandAugment/TrivialAugmentWide/AugMix call) on each float image: exact for nearest warps
and quantising ops, 1e-5 for blends and bilinear warps. torchvision is given its
InterpolationMode enum (0.26 rejects the strings that older versions accepted).
"""
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from lowres.augment import auto_apply, auto_ops
from lowres.augment.auto_ops import AUTO_OPS
from lowres.augment.basic_ops import jitter
from lowres.augment.mix import mix_batch

def tv_transform(transform, inpt, params):
    """A v2 transform applied with fixed parameters (older torchvision calls it `_transform`)."""
    apply = getattr(transform, "transform", None) or transform._transform
    return apply(inpt, params)


TV_POLICIES = {"randaugment": T.RandAugment, "trivialaugment": T.TrivialAugmentWide,
               "augmix": T.AugMix}


@pytest.mark.parametrize("policy", sorted(TV_POLICIES))
def test_magnitude_tables_match_torchvision(policy):
    space = TV_POLICIES[policy]._AUGMENTATION_SPACE
    bins = 10 if policy == "augmix" else 31
    ours = {op.name: op for op in auto_ops.ops_for(policy)}
    assert set(ours) == set(space)  # the same ops (AugMix's in another order: no matter)
    for name, (fn, signed) in space.items():
        want = fn(bins, 24, 40)
        got = ours[name].magnitude_table(policy, bins, 24, 40)
        assert (want is None) == (got is None), name
        if want is not None:
            torch.testing.assert_close(got.float(), want.float(), atol=0, rtol=0)
        assert ours[name].signed == signed, name


def test_augmix_without_all_ops_matches_torchvision():
    partial = auto_ops.ops_for("augmix", all_ops=False)
    assert [op.name for op in partial] == list(T.AugMix._PARTIAL_AUGMENTATION_SPACE)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("k", range(len(AUTO_OPS)), ids=[op.name for op in AUTO_OPS])
def test_auto_augment_op(images, k, interpolation):
    op = AUTO_OPS[k]
    name = op.name
    table = op.magnitude_table("randaugment", 31, 24, 24)
    if table is None:
        magnitude = torch.zeros(images.shape[0], dtype=torch.float64)
    else:
        magnitude = table[torch.tensor([0, 4, 9, 13, 18, 22, 27, 30])].double()
        if op.signed:
            magnitude = magnitude * torch.tensor([1, -1] * 4)
    tv = T.RandAugment(interpolation=T.InterpolationMode(interpolation))
    want = torch.stack([tv._apply_image_or_video_transform(
        img, name, float(m), interpolation=tv.interpolation, fill=tv._fill)
        for img, m in zip(images, magnitude)])
    op_index = torch.full((images.shape[0],), k)
    got = auto_apply.apply_drawn_ops(images.clone(), op_index, magnitude, AUTO_OPS, interpolation,
                                     None)
    exact = interpolation == "nearest" and name not in {"Brightness", "Color", "Contrast",
                                                        "Sharpness", "AutoContrast"}
    torch.testing.assert_close(got, want, atol=0 if exact else 1e-5, rtol=0)


def test_color_jitter(images):
    b = images.shape[0]
    g = torch.Generator().manual_seed(5)
    factors = [torch.rand(b, generator=g) + 0.5, torch.rand(b, generator=g) + 0.5,
               torch.rand(b, generator=g) * 2, torch.rand(b, generator=g) - 0.5]
    order = torch.stack([torch.randperm(4, generator=g) for _ in range(b)])
    selected = torch.tensor([True] * 7 + [False])
    fns = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    want = []
    for i, img in enumerate(images):
        if selected[i]:
            for k in order[i].tolist():
                img = fns[k](img, float(factors[k][i]))
        want.append(img)
    torch.testing.assert_close(jitter(images, factors, order, selected), torch.stack(want),
                               atol=2e-5, rtol=0)


def test_mixup_matches_torchvision(images):
    labels = torch.arange(8) % 5
    lam = 0.3
    tv = T.MixUp(alpha=1.0, num_classes=5)
    params = {"labels": labels, "batch_size": 8, "lam": lam}
    want_x, want_y = tv_transform(tv, images, params), tv_transform(tv, labels, params)
    box = torch.zeros(8, 4, dtype=torch.long)
    got_x, got_y = mix_batch(images, labels, torch.full((8,), lam), torch.ones(8, dtype=torch.bool),
                             box, 5)
    torch.testing.assert_close(got_x, want_x, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_y, want_y, atol=1e-6, rtol=0)


def test_cutmix_matches_torchvision(images):
    labels = torch.arange(8) % 5
    x1, y1, x2, y2 = 3, 5, 17, 20
    lam = 1.0 - (x2 - x1) * (y2 - y1) / (24 * 24)
    tv = T.CutMix(alpha=1.0, num_classes=5)
    params = {"labels": labels, "batch_size": 8, "box": (x1, y1, x2, y2), "lam_adjusted": lam}
    want_x, want_y = tv_transform(tv, images, params), tv_transform(tv, labels, params)
    box = torch.tensor([[y1, y2, x1, x2]] * 8)
    got_x, got_y = mix_batch(images, labels, torch.full((8,), lam),
                             torch.zeros(8, dtype=torch.bool), box, 5)
    assert torch.equal(got_x, want_x)
    torch.testing.assert_close(got_y, want_y, atol=1e-6, rtol=0)


@pytest.mark.parametrize("policy,interpolation", [("randaugment", "nearest"),
                                                  ("trivialaugment", "nearest"),
                                                  ("augmix", "bilinear")])
def test_drawn_ops_in_one_batch(policy, interpolation):
    """The policy path: every sample its own op and signed magnitude in one call (the
    geometric ops share one warp there), against torchvision image by image."""
    g = torch.Generator().manual_seed(3)
    ops = auto_ops.ops_for(policy)
    n = 2 * len(ops)
    x = torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8).float() / 255
    op_index = torch.arange(n) % len(ops)
    bins = 10 if policy == "augmix" else 31
    bin_index = torch.randint(0, 3 if policy == "augmix" else bins, (n,), generator=g)
    magnitude = auto_apply.draw_magnitudes(g, policy, ops, op_index, bin_index, bins, 16, 16)
    got = auto_apply.apply_drawn_ops(x.clone(), op_index, magnitude, ops, interpolation, None)
    tv = TV_POLICIES[policy](interpolation=T.InterpolationMode(interpolation))
    want = torch.stack([tv._apply_image_or_video_transform(
        img, ops[int(k)].name, float(m), interpolation=tv.interpolation, fill=tv._fill)
        for img, k, m in zip(x, op_index, magnitude)])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    if interpolation == "nearest":
        geometric = torch.tensor([ops[int(k)].geometric for k in op_index])
        assert torch.equal(got[geometric], want[geometric])
