"""Seeded results stay what they were: a regression guard on the draws and the numbers.

For each auto-augment policy and the seed's two stage specs, the pipeline runs on a fixed
random uint8 batch with a fixed generator, in both masking modes, for two batches (the
second continues the draws of the first). What it gives is checked against the values in
fingerprints.json (one entry per spec and channel count: both modes give the same), in
two parts.

Exact (SHA-256), where exactness is the point and the CPU plays no part:
- the generator state after each batch: how much randomness each op consumes (resume
  replays the same draws only if that never changes);
- the integer and boolean draws of every op: which op a sample drew, coins, choices,
  boxes (the random decisions and the masks they make);
- the targets: the labels, or the soft targets of the mix ops (float32 arithmetic on
  Beta draws, which torch computes in double precision and rounds to float32).

With a tolerance, where the last bits depend on the CPU's kernels:
- float draws (magnitudes, blur sigmas, AugMix weights), by their sum and absolute sum,
  to FLOAT_DRAWS_RTOL relative: the magnitudes are entries of float32 tables made with
  torch.linspace, whose vectorised and scalar kernels round differently.
- the images, by three statistics per image on the 0..1 scale (before normalisation):
  mean, spread (mean absolute deviation from the mean: smoothing, such as bilinear
  resampling or blur, lowers it) and sketch (the mean of the pixels times a fixed +-1
  pattern: moving pixels around, a one-pixel shift or a flip the wrong way, changes it).
  Each must be within TOLERANCE of the stored value, in all but at most MAX_IMAGES_OFF of
  the 96 images of a case.

Why the images cannot be hashed: a bilinear warp computes its grid with a batched matrix
product (MKL picks its kernel by CPU: AVX-512 and AVX2 round differently) and samples with
grid_sample (whose vectorised and scalar kernels round differently); threshold ops after
that (posterize, solarize, equalize) move a pixel that lay within a rounding error of a
threshold by a whole level. An AVX-512 x86-64 machine computes what other CPUs do when
run with MKL_ENABLE_INSTRUCTIONS=AVX2, ATEN_CPU_CAPABILITY=avx2 or
ATEN_CPU_CAPABILITY=default (torch's scalar kernels, as on CPUs without AVX2); the test
passes under each.

The tolerance: each statistic is a mean over the image's N = C*20*24 pixels (480 or 1440),
so a pixel that moves by d moves it by at most 2*d/N (d/N for mean and sketch). Last-bit
rounding (1e-7 per pixel) moves a statistic by about 1e-7, a pixel flipped by one grey
level (1/255) by at most 1.7e-5 (grey images). TOLERANCE = 1e-3 absorbs 60 such flips in
one grey image, or one pixel flipped by 0.24 (a solarize threshold). Apart from the one
image MAX_IMAGES_OFF is for, the kernels above move no statistic by more than 3.3e-4 (an
image of randaugment_bilinear: 5-bit posterize flips), all others by 5e-5 at most. A
change of an op moves the statistics of the images that drew it by several times the
tolerance (test_op_changes_are_caught: 1% more brightness, nearest for bilinear, a
one-pixel shift, 2% more blur sigma, a wrong flip).

The recorded values come from torch 2.14.1 on x86-64 CPU; the exact parts are those of
the code before the one-table redesign of the auto-augment ops (the hashes of the images
the test recorded before are reproduced with MKL_ENABLE_INSTRUCTIONS=AVX2). If an intended
change moves them (an intended change of the draws must say so in its commit), check the
ops against torchvision (test_equivalence_*) and regenerate with
`python tests/augment/test_fingerprint.py`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.nn import functional

from lowres.augment import (auto_apply, auto_ops, basic_ops, build_pipeline, color_ops, filter_ops,
                            geometry_ops)
from lowres.augment.base import forced_masking
from lowres.config import SEED_STAGE1_AUGMENT, SEED_STAGE2_AUGMENT

SPECS = {
    "randaugment": [{"op": "randaugment"}],
    "randaugment_bilinear": [{"op": "randaugment", "num_ops": 3, "magnitude": 20,
                              "interpolation": "bilinear", "fill": [0.2, 0.4, 0.6]}],
    "trivialaugment": [{"op": "trivialaugment"}],
    "trivialaugment_bilinear": [{"op": "trivialaugment", "interpolation": "bilinear"}],
    "augmix": [{"op": "augmix"}],
    "augmix_partial": [{"op": "augmix", "all_ops": False, "chain_depth": 2,
                        "interpolation": "nearest"}],
    "inside_random_choice": [{"op": "random_choice", "ops": [
        {"op": "randaugment", "num_ops": 1}, {"op": "trivialaugment"}, {"op": "hflip"}]}],
    "seed_stage1": SEED_STAGE1_AUGMENT,
    "seed_stage2": SEED_STAGE2_AUGMENT,
    "seed_stage2_mixed": SEED_STAGE2_AUGMENT + [{"op": "mixup_cutmix", "per_sample": True}],
    "mixup": [{"op": "hflip"}, {"op": "mixup", "alpha": 0.4}],
    "cutmix": [{"op": "cutmix", "per_sample": True}],
}
MODES = ("subset", "where")
CHANNELS = (3, 1)
CASES = [f"{name}/{mode}/{c}" for name in SPECS for mode in MODES for c in CHANNELS]
MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)

REFERENCE_FILE = Path(__file__).with_name("fingerprints.json")
TOLERANCE = 1e-3  # per image statistic, on the 0..1 scale (see the module docstring)
# A value within a rounding error of a truncation can change a whole image: with torch's
# scalar kernels (ATEN_CPU_CAPABILITY=default) linspace(0, 32, 31)[15] is 16.0, with AVX2
# and AVX-512 15.999999, so TrivialAugment's TranslateX/Y shifts by 16 or 15 pixels. That
# happens to one image in these cases; a change of an op changes every image that drew
# it (a few per op and case at least), so one image may miss.
MAX_IMAGES_OFF = 1
FLOAT_DRAWS_RTOL = 1e-6
UNIT = 1e-5  # the image statistics are stored as integers in this unit
STATISTICS = ("mean", "spread", "sketch")


@dataclasses.dataclass
class Batch:
    """One batch of a case: the pipeline's output and what its draws were."""
    images: Tensor  # normalised float32, as the pipeline returns them
    targets: Tensor
    state: Tensor  # generator state afterwards
    exact_draws: list[bytes]  # integer and boolean draws
    float_draws: list[float]  # sum and absolute sum of each float draw


def _record(value: Any, exact: list[bytes], floats: list[float]) -> None:
    """Walk an op's draws (tensors, or dicts and lists of them, in their order)."""
    if isinstance(value, Tensor):
        if value.is_floating_point():
            v = value.double()
            floats.extend([v.sum().item(), v.abs().sum().item()])
        else:
            exact.append(value.to(torch.int64).contiguous().numpy().tobytes())
    elif isinstance(value, dict):
        for item in value.values():
            _record(item, exact, floats)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _record(item, exact, floats)
    else:
        exact.append(repr(value).encode())


def run_case(spec: list[dict], mode: str, channels: int = 3) -> list[Batch]:
    data = torch.Generator().manual_seed(2024)
    images = torch.randint(0, 256, (48, channels, 20, 24), generator=data, dtype=torch.uint8)
    labels = torch.randint(0, 10, (48,), generator=data)
    pipe = build_pipeline(spec, list(MEAN), list(STD), 10)
    exact: list[bytes] = []
    floats: list[float] = []
    for op in pipe.image_ops:  # record every op's draws as the pipeline takes them
        def draw(generator, shape, original=op.draw):
            drawn = original(generator, shape)
            _record(drawn, exact, floats)
            return drawn
        op.draw = draw
    g = torch.Generator().manual_seed(7)
    batches = []
    with forced_masking(mode):
        for _ in range(2):  # a second batch: draws continue from where the first left off
            x, y = pipe(images, labels, g)
            batches.append(Batch(x, y, g.get_state(), exact[:], floats[:]))
            exact.clear()
            floats.clear()
    return batches


def _digest(chunks: list[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()[:16]


_SIGNS: dict[int, Tensor] = {}


def _signs(n: int) -> Tensor:
    """A fixed +-1 pattern of length n (Python's random: the same sequence everywhere)."""
    if n not in _SIGNS:
        rng = random.Random(20240607)
        _SIGNS[n] = torch.tensor([1.0 if rng.random() < 0.5 else -1.0 for _ in range(n)],
                                 dtype=torch.float64)
    return _SIGNS[n]


def image_statistics(images: Tensor) -> dict[str, Tensor]:
    """Mean, spread (mean absolute deviation from the mean) and sketch [B] (float64) of
    normalised images, on the 0..1 scale."""
    b, c = images.shape[:2]
    shift, scale = torch.tensor(MEAN, dtype=torch.float64), torch.tensor(STD, dtype=torch.float64)
    if c != len(MEAN):  # the pipeline normalises grey images with the average
        shift, scale = shift.mean().expand(c), scale.mean().expand(c)
    x = (images.double() * scale.reshape(1, c, 1, 1) + shift.reshape(1, c, 1, 1)).reshape(b, -1)
    mean = x.mean(1)
    return {"mean": mean, "spread": (x - mean.unsqueeze(1)).abs().mean(1),
            "sketch": (x * _signs(x.shape[1])).mean(1)}


def summarise(batches: list[Batch]) -> dict[str, Any]:
    """What fingerprints.json holds for a case."""
    stats = [image_statistics(batch.images) for batch in batches]
    return {
        "exact": {
            "generator": _digest([batch.state.numpy().tobytes() for batch in batches]),
            "draws": _digest([chunk for batch in batches for chunk in batch.exact_draws]),
            "targets": _digest([batch.targets.contiguous().numpy().tobytes() for batch in batches]),
        },
        "float_draws": [float(f"{v:.10g}") for batch in batches for v in batch.float_draws],
        **{name: [round(v / UNIT) for s in stats for v in s[name].tolist()]
           for name in STATISTICS},
    }


def differences(summary: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """Where `summary` and `reference` disagree (empty: they agree), see the docstring."""
    problems = [f"{key} differ (exactly compared): {summary['exact'][key]} instead of {value}"
                for key, value in reference["exact"].items() if summary["exact"][key] != value]
    got, want = summary["float_draws"], reference["float_draws"]
    if len(got) != len(want):
        problems.append(f"{len(got) // 2} float draws instead of {len(want) // 2}")
    else:
        # Each pair: sum, absolute sum; both compared relative to the absolute sum.
        for k in range(0, len(want), 2):
            scale = FLOAT_DRAWS_RTOL * max(abs(want[k + 1]), 1e-12)
            if abs(got[k] - want[k]) > scale or abs(got[k + 1] - want[k + 1]) > scale:
                problems.append(f"float draw {k // 2}: sum {got[k]:.9g}, absolute sum "
                                f"{got[k + 1]:.9g} instead of {want[k]:.9g}, {want[k + 1]:.9g}")
    if any(len(summary[name]) != len(reference[name]) for name in STATISTICS):
        return problems + ["a different number of images"]
    deviation = torch.stack([(torch.tensor(summary[name], dtype=torch.float64)
                              - torch.tensor(reference[name], dtype=torch.float64)).abs() * UNIT
                             for name in STATISTICS], 1)  # [images, statistics]
    off = (deviation > TOLERANCE).any(1).nonzero().squeeze(1).tolist()
    if len(off) > MAX_IMAGES_OFF:
        worst = ", ".join(f"{STATISTICS[int(deviation[i].argmax())]} of image {i} by "
                          f"{float(deviation[i].max()):.2g}" for i in off[:4])
        problems.append(f"{len(off)} images off by more than {TOLERANCE} (at most "
                        f"{MAX_IMAGES_OFF} may be), e.g. {worst}")
    return problems


def fingerprint(spec: list[dict], mode: str, channels: int = 3) -> dict[str, Any]:
    return summarise(run_case(spec, mode, channels))


def reference_key(case: str) -> str:
    """Both masking modes give the same numbers: they share one stored entry."""
    name, _, channels = case.split("/")
    return f"{name}/{channels}"


def load_reference() -> dict[str, Any]:
    return json.loads(REFERENCE_FILE.read_text()) if REFERENCE_FILE.exists() else {}


RECORDED = load_reference()


def check_case(case: str, batches: list[Batch] | None = None) -> list[str]:
    name, mode, channels = case.split("/")
    if batches is None:
        batches = run_case(SPECS[name], mode, int(channels))
    return differences(summarise(batches), RECORDED[reference_key(case)])


@pytest.mark.parametrize("case", CASES)
def test_seeded_results_are_unchanged(case):
    assert reference_key(case) in RECORDED, "regenerate: python tests/augment/test_fingerprint.py"
    assert check_case(case) == []


def test_every_case_is_recorded():
    assert sorted(RECORDED) == sorted({reference_key(case) for case in CASES})


# --- the tolerance is tight enough: changes of an op are caught ------------------------

def _brightness_off(monkeypatch):
    """The Brightness row with its factor 1% too large (AUTO_OPS rows hold the function)."""
    def brighter(x, magnitude, inplace):
        return color_ops.adjust_brightness(x, (1.0 + magnitude) * 1.01, inplace)
    table = tuple(dataclasses.replace(op, pixels=brighter) if op.name == "Brightness" else op
                  for op in auto_ops.AUTO_OPS)
    monkeypatch.setattr(auto_ops, "AUTO_OPS", table)


def _nearest_for_bilinear(monkeypatch):
    def grid_sample(*args, **kwargs):
        return functional.grid_sample(*args, **dict(kwargs, mode="nearest"))
    monkeypatch.setattr(geometry_ops, "grid_sample", grid_sample)


def _one_pixel_shift(monkeypatch):
    """Every affine warp reads one pixel to the right."""
    original = geometry_ops.inverse_affine_matrix

    def shifted(*args):
        matrix = original(*args).clone()
        matrix[:, 0, 2] += 1.0
        return matrix
    monkeypatch.setattr(geometry_ops, "inverse_affine_matrix", shifted)
    monkeypatch.setattr(auto_apply, "_SOURCES", {})  # cached nearest-neighbour source maps


def _blur_sigma_off(monkeypatch):
    original = filter_ops.gaussian_kernels
    monkeypatch.setattr(filter_ops, "gaussian_kernels",
                        lambda size, sigma: original(size, sigma * 1.02))


def _hflip_vertical(monkeypatch):
    """hflip flips upside down: the same pixels, rearranged (which the sketch sees)."""
    monkeypatch.setattr(basic_ops.HFlip, "DIM", 2)


OP_CHANGES = {
    "brightness_x1.01/trivialaugment/subset/3": _brightness_off,
    "brightness_x1.01/augmix/subset/1": _brightness_off,
    "bilinear_as_nearest/augmix/subset/3": _nearest_for_bilinear,
    "bilinear_as_nearest/trivialaugment_bilinear/subset/1": _nearest_for_bilinear,
    "one_pixel_shift/trivialaugment/subset/1": _one_pixel_shift,
    "one_pixel_shift/randaugment_bilinear/subset/3": _one_pixel_shift,
    "blur_sigma_x1.02/seed_stage1/subset/1": _blur_sigma_off,
    "hflip_vertical/mixup/where/3": _hflip_vertical,
}


@pytest.mark.parametrize("change", OP_CHANGES)
def test_op_changes_are_caught(change, monkeypatch):
    """A small change of an op's arithmetic, which leaves every draw as it was, moves the
    image statistics beyond the tolerance: only the toleranced part can catch it."""
    OP_CHANGES[change](monkeypatch)
    case = change.split("/", 1)[1]
    name, mode, channels = case.split("/")
    summary = summarise(run_case(SPECS[name], mode, int(channels)))
    reference = RECORDED[reference_key(case)]
    assert summary["exact"] == reference["exact"]
    problems = differences(summary, reference)
    assert problems and all("images off" in p for p in problems)


# --- the tolerance is loose enough: rounding differences pass ---------------------------

def _perturbed(batches: list[Batch], perturb) -> list[Batch]:
    """The batches with their images changed by perturb(images of every batch, generator)."""
    images = [batch.images.clone() for batch in batches]
    perturb(images, torch.Generator().manual_seed(99))
    return [dataclasses.replace(batch, images=x) for batch, x in zip(batches, images)]


def _last_bits(images: list[Tensor], g: torch.Generator) -> None:
    """Every pixel one float32 step up or down (what another kernel's rounding gives)."""
    for x in images:
        up = torch.rand(x.shape, generator=g) < 0.5
        x.copy_(torch.nextafter(x, torch.where(up, torch.inf, -torch.inf)))


def _level_flips(images: list[Tensor], g: torch.Generator) -> None:
    """Pixels scattered over each batch moved as thresholds landing on the other side move
    them: 24 by one grey level (1/255), 4 by a level of 5-bit posterize (1/32, as between
    AVX2 and AVX-512 in randaugment_bilinear), 1 by 0.2 (solarize); up or down."""
    for x in images:
        c = x.shape[1]
        std = torch.tensor(STD) if c == len(STD) else torch.tensor(STD).mean().expand(c)
        step = torch.tensor([1.0 / 255.0] * 24 + [1.0 / 32.0] * 4 + [0.2])
        where = torch.randperm(x.numel(), generator=g)[:len(step)]
        sign = torch.randint(0, 2, step.shape, generator=g) * 2.0 - 1.0
        channel = where // (x.shape[2] * x.shape[3]) % c
        x.view(-1)[where] += sign * step / std[channel]  # normalised units


def _one_image_redone(images: list[Tensor], g: torch.Generator) -> None:
    """One image of the case shifted by a pixel (a truncation landing on the other side)."""
    images[0][5] = images[0][5].roll(1, -1)


def _two_images_redone(images: list[Tensor], g: torch.Generator) -> None:
    images[0][5] = images[0][5].roll(1, -1)
    images[1][17] = images[1][17].roll(1, -1)


def _all_of_them(images: list[Tensor], g: torch.Generator) -> None:
    for perturb in (_last_bits, _level_flips, _one_image_redone):
        perturb(images, g)


@pytest.mark.parametrize("case", ["augmix/subset/1", "randaugment_bilinear/subset/3",
                                  "trivialaugment/subset/1"])
def test_rounding_differences_pass(case):
    """What another CPU's rounding does to the real pipeline's output passes (compared with
    the unperturbed output's own statistics, so that this holds on every CPU)."""
    name, mode, channels = case.split("/")
    batches = run_case(SPECS[name], mode, int(channels))
    reference = summarise(batches)
    for perturb in (_last_bits, _level_flips, _one_image_redone, _all_of_them):
        assert differences(summarise(_perturbed(batches, perturb)), reference) == [], \
            perturb.__name__
    assert differences(summarise(_perturbed(batches, _two_images_redone)), reference) != []


def regenerate() -> None:
    """Write fingerprints.json; both masking modes must agree on every case."""
    entries = {}
    for name, spec in SPECS.items():
        for channels in CHANNELS:
            summaries = [fingerprint(spec, mode, channels) for mode in MODES]
            for other in summaries[1:]:
                if differences(other, summaries[0]):
                    raise SystemExit(f"{name}/{channels}: the masking modes disagree: "
                                     f"{differences(other, summaries[0])}")
            entries[f"{name}/{channels}"] = summaries[0]
    lines = [f"  {json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}"
             for key, value in entries.items()]
    REFERENCE_FILE.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {REFERENCE_FILE} ({len(entries)} entries)")


if __name__ == "__main__":
    regenerate()
