"""Batched colour ops vs torchvision.transforms.v2.functional, image by image.

We match torchvision's *float* path (the pipeline converts uint8 input to float 0..1 first).
Tolerances: 1e-5 absolute where both compute the same formula in float32 (differences
are rounding only); exact where outputs are quantised (equalize, posterize, solarize).
"""
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from lowres.augment import color_ops

ATOL = 1e-5


def per_image(fn, images, *params):
    return torch.stack([fn(img, *(float(p[i]) if p.dtype.is_floating_point else int(p[i])
                                  for p in params)) for i, img in enumerate(images)])


@pytest.mark.parametrize("channels", [3, 1])
def test_brightness_contrast_saturation(images, channels):
    x = images[:, :channels].contiguous()
    factor = torch.linspace(0.0, 1.9, x.shape[0])
    for ours, theirs in [(color_ops.adjust_brightness, TF.adjust_brightness),
                         (color_ops.adjust_contrast, TF.adjust_contrast),
                         (color_ops.adjust_saturation, TF.adjust_saturation)]:
        torch.testing.assert_close(ours(x, factor), per_image(theirs, x, factor), atol=ATOL, rtol=0)


@pytest.mark.parametrize("channels", [3, 1])
def test_sharpness(images, channels):
    x = images[:, :channels].contiguous()
    factor = torch.linspace(0.1, 1.9, x.shape[0])
    torch.testing.assert_close(color_ops.adjust_sharpness(x, factor),
                               per_image(TF.adjust_sharpness, x, factor), atol=ATOL, rtol=0)


def test_hue(images):
    # Our HSV round trip uses a different (closed-form) formula: equal up to float rounding.
    shift = torch.linspace(-0.5, 0.5, images.shape[0])
    x = images.clone()
    x[0, :, :4, :4] = 0.5  # grey pixels: no hue
    torch.testing.assert_close(color_ops.adjust_hue(x, shift), per_image(TF.adjust_hue, x, shift),
                               atol=2e-5, rtol=0)


def test_grayscale(images):
    want = torch.stack([TF.rgb_to_grayscale(img, num_output_channels=3) for img in images])
    torch.testing.assert_close(color_ops.grayscale(images), want, atol=ATOL, rtol=0)


def test_posterize_and_solarize(images):
    bits = torch.tensor([0, 1, 2, 3, 4, 5, 7, 8])
    torch.testing.assert_close(color_ops.posterize(images, bits),
                               per_image(TF.posterize, images, bits), atol=0, rtol=0)
    threshold = torch.linspace(0.0, 1.0, images.shape[0])
    torch.testing.assert_close(color_ops.solarize(images, threshold),
                               per_image(TF.solarize, images, threshold), atol=0, rtol=0)


@pytest.mark.parametrize("channels", [3, 1])
def test_autocontrast(images, channels):
    x = images[:, :channels].contiguous()
    x[1] = 0.25  # a flat image stays as it is
    x[2] = x[2] * 0.5 + 0.2
    want = torch.stack([TF.autocontrast(img) for img in x])
    torch.testing.assert_close(color_ops.autocontrast(x), want, atol=ATOL, rtol=0)


def test_equalize(images):
    x = images.clone()
    x[1] = (x[1] * 4).round() / 4  # few levels
    x[2] = 0.5  # flat: returned as is
    x[3, :, :, :20] = 1.0  # mostly the top level: step == 0 in PIL's scheme
    want = torch.stack([TF.equalize(img) for img in x])
    assert torch.equal(color_ops.equalize(x), want)
