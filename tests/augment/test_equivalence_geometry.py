"""Batched geometric, blur and erasing ops vs torchvision.transforms.v2.functional.

Float inputs. Nearest-neighbour warps are compared exactly (same inverse matrix, same
grid); bilinear warps and blur to 1e-5 (float rounding; blur runs as two 1-D passes where
torchvision uses one 2-D kernel).
"""
import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms.v2 import InterpolationMode

from lowres.augment import auto_apply, filter_ops, geometry_ops
from lowres.augment.auto_ops import AUTO_OPS

NAMES = [op.name for op in AUTO_OPS]


def auto_op(images, name, magnitude):
    """The auto-augment op `name` (a row of AUTO_OPS, geometric ones through the shared
    affine warp) on every sample, with magnitude [B] per sample."""
    op_index = torch.full((images.shape[0],), NAMES.index(name))
    return auto_apply.apply_drawn_ops(images.clone(), op_index, magnitude, AUTO_OPS, "nearest",
                                      None)


def test_flips(images):
    selected = torch.tensor([True, False] * 4)
    for dim, fn in [(3, TF.horizontal_flip), (2, TF.vertical_flip)]:
        want = torch.stack([fn(img) if s else img for img, s in zip(images, selected)])
        assert torch.equal(geometry_ops.flip(images, selected, dim), want)


@pytest.mark.parametrize("interpolation,fill,atol", [
    ("nearest", None, 0.0), ("nearest", (0.2, 0.5, 0.9), 0.0), ("bilinear", (0.3,), 1e-5)])
def test_affine(images, interpolation, fill, atol):
    b = images.shape[0]
    angle = torch.linspace(-170.0, 170.0, b, dtype=torch.float64)
    translate = torch.stack([torch.linspace(-5, 5, b), torch.linspace(3, -3, b)], 1).round()
    scale = torch.linspace(0.7, 1.3, b, dtype=torch.float64)
    shear = torch.stack([torch.linspace(-20, 20, b), torch.linspace(10, -10, b)], 1).double()
    mode = InterpolationMode(interpolation)
    want = torch.stack([TF.affine(img, angle=float(angle[i]), translate=translate[i].tolist(),
                                  scale=float(scale[i]), shear=shear[i].tolist(),
                                  interpolation=mode, fill=list(fill) if fill else None)
                        for i, img in enumerate(images)])
    got = geometry_ops.affine(images, angle, translate, scale, shear, interpolation, fill)
    torch.testing.assert_close(got, want, atol=atol, rtol=0)


def test_rotate(images):
    angle = torch.tensor([-30.0, -12.5, -1.0, 3.0, 7.7, 15.0, 29.0, 45.0], dtype=torch.float64)
    want = torch.stack([TF.rotate(img, float(a)) for img, a in zip(images, angle)])
    assert torch.equal(auto_op(images, "Rotate", angle), want)


@pytest.mark.parametrize("axis", [0, 1])
def test_shear_about_the_corner(images, axis):
    # RandAugment's ShearX/ShearY: affine about the top-left corner with atan(factor) degrees.
    factor = torch.linspace(-0.3, 0.3, images.shape[0], dtype=torch.float64)
    want = []
    for img, f in zip(images, factor):
        deg = math.degrees(math.atan(float(f)))
        shear = [deg, 0.0] if axis == 0 else [0.0, deg]
        want.append(TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=shear,
                              interpolation=InterpolationMode.NEAREST, center=[0, 0]))
    assert torch.equal(auto_op(images, ("ShearX", "ShearY")[axis], factor), torch.stack(want))


def test_translate(images):
    shift = torch.tensor([[-3, 0], [0, 5], [2, -2], [0, 0], [11, 4], [-7, -7], [1, 0], [0, -1]],
                         dtype=torch.float64)
    want = torch.stack([TF.affine(img, angle=0.0, translate=[int(s[0]), int(s[1])], scale=1.0,
                                  shear=[0.0, 0.0], fill=[0.5]) for img, s in zip(images, shift)])
    assert torch.equal(geometry_ops.translate(images, shift, fill=(0.5,)), want)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_padded_crop(images, mode):
    b, _, h, w = images.shape
    pad = (4, 2, 3, 1)  # left, top, right, bottom
    top = torch.tensor([0, 1, 2, 3, 0, 3, 1, 2])
    left = torch.tensor([0, 7, 3, 5, 1, 2, 6, 4])
    tv_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    want = torch.stack([TF.crop(TF.pad(img, list(pad), fill=0.25 if mode == "constant" else 0,
                                       padding_mode=tv_mode), int(t), int(lf), h, w)
                        for img, t, lf in zip(images, top, left)])
    got = geometry_ops.padded_crop(images, top, left, (h, w), pad, mode, fill=0.25)
    assert torch.equal(got, want)


@pytest.mark.parametrize("kernel_size", [(3, 3), (5, 3)])
def test_gaussian_blur(images, kernel_size):
    sigma = torch.linspace(0.1, 2.0, images.shape[0])
    want = torch.stack([TF.gaussian_blur(img, list(kernel_size), [float(s), float(s)])
                        for img, s in zip(images, sigma)])
    torch.testing.assert_close(filter_ops.gaussian_blur(images, kernel_size, sigma), want,
                               atol=1e-5, rtol=0)


def test_erase(images):
    top = torch.tensor([0, 3, 5, 10, 0, 20, 1, 2])
    left = torch.tensor([0, 2, 7, 0, 12, 20, 1, 2])
    box_h = torch.tensor([4, 10, 1, 14, 23, 4, 0, 5])
    box_w = torch.tensor([4, 3, 16, 14, 11, 4, 5, 0])
    colour = torch.tensor([0.1, 0.2, 0.3]).reshape(3, 1, 1)
    want = torch.stack([TF.erase(img, int(t), int(lf), int(h), int(w), colour)
                        if h > 0 and w > 0 else img
                        for img, t, lf, h, w in zip(images, top, left, box_h, box_w)])
    assert torch.equal(filter_ops.erase(images, top, left, box_h, box_w, colour), want)
