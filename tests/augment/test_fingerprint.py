"""Seeded results stay what they were: a regression guard on exact numbers.

For each auto-augment policy and the seed's two stage specs, the pipeline runs on a fixed
random uint8 batch with a fixed generator, in both masking modes; the SHA-256 of the output
images, the targets and the generator state afterwards must equal the values recorded
below. The generator state pins how much randomness each op consumes (resume replays the
same draws only if that never changes); the images pin every op's arithmetic bit for bit.

The recorded values come from the code before the one-table redesign of the auto-augment
ops, with torch 2.14.1 on x86-64 CPU. If a torch upgrade (or another CPU's kernels)
changes the float results, check the ops against torchvision (test_equivalence_*) and
regenerate with `python tests/augment/test_fingerprint.py`; an intended change of the
draws must say so in its commit.
"""
import hashlib

import pytest
import torch

from lowres.augment import build_pipeline
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


def fingerprint(spec: list[dict], mode: str, channels: int = 3) -> str:
    data = torch.Generator().manual_seed(2024)
    images = torch.randint(0, 256, (48, channels, 20, 24), generator=data, dtype=torch.uint8)
    labels = torch.randint(0, 10, (48,), generator=data)
    pipe = build_pipeline(spec, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3], 10)
    g = torch.Generator().manual_seed(7)
    digest = hashlib.sha256()
    with forced_masking(mode):
        for _ in range(2):  # a second batch: draws continue from where the first left off
            x, y = pipe(images, labels, g)
            for t in (x, y, g.get_state()):
                digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def all_fingerprints() -> dict[str, str]:
    return {f"{name}/{mode}/{c}": fingerprint(spec, mode, c)
            for name, spec in SPECS.items() for mode in MODES for c in (3, 1)}


RECORDED = {
    "randaugment/subset/3": "87dcf8a2014fe834",
    "randaugment/subset/1": "ad3f87eb2a86ff25",
    "randaugment/where/3": "87dcf8a2014fe834",
    "randaugment/where/1": "ad3f87eb2a86ff25",
    "randaugment_bilinear/subset/3": "388ab3cbabc0413d",
    "randaugment_bilinear/subset/1": "a810aa852cf3ed43",
    "randaugment_bilinear/where/3": "388ab3cbabc0413d",
    "randaugment_bilinear/where/1": "a810aa852cf3ed43",
    "trivialaugment/subset/3": "f2c51daf97fe99b5",
    "trivialaugment/subset/1": "9d0b16dd9af526b1",
    "trivialaugment/where/3": "f2c51daf97fe99b5",
    "trivialaugment/where/1": "9d0b16dd9af526b1",
    "trivialaugment_bilinear/subset/3": "ebddb39b6707df97",
    "trivialaugment_bilinear/subset/1": "fd135dd537f513b4",
    "trivialaugment_bilinear/where/3": "ebddb39b6707df97",
    "trivialaugment_bilinear/where/1": "fd135dd537f513b4",
    "augmix/subset/3": "873f40f3a15388b2",
    "augmix/subset/1": "2bf84c9acec38ae6",
    "augmix/where/3": "873f40f3a15388b2",
    "augmix/where/1": "2bf84c9acec38ae6",
    "augmix_partial/subset/3": "83b9fc65367c2e3d",
    "augmix_partial/subset/1": "91fea200c05d05b5",
    "augmix_partial/where/3": "83b9fc65367c2e3d",
    "augmix_partial/where/1": "91fea200c05d05b5",
    "inside_random_choice/subset/3": "1b97f4551b1f3ce6",
    "inside_random_choice/subset/1": "8883602033291981",
    "inside_random_choice/where/3": "1b97f4551b1f3ce6",
    "inside_random_choice/where/1": "8883602033291981",
    "seed_stage1/subset/3": "aae90636c3eac01f",
    "seed_stage1/subset/1": "00b0a0748eba1ee0",
    "seed_stage1/where/3": "aae90636c3eac01f",
    "seed_stage1/where/1": "00b0a0748eba1ee0",
    "seed_stage2/subset/3": "d0825b5d3a77e2cd",
    "seed_stage2/subset/1": "da86cd471665d2ac",
    "seed_stage2/where/3": "d0825b5d3a77e2cd",
    "seed_stage2/where/1": "da86cd471665d2ac",
    "seed_stage2_mixed/subset/3": "56d107a196e43126",
    "seed_stage2_mixed/subset/1": "00f70d9c9f58d304",
    "seed_stage2_mixed/where/3": "56d107a196e43126",
    "seed_stage2_mixed/where/1": "00f70d9c9f58d304",
    "mixup/subset/3": "d4d018fa90b252a0",
    "mixup/subset/1": "f9a04ae36a648365",
    "mixup/where/3": "d4d018fa90b252a0",
    "mixup/where/1": "f9a04ae36a648365",
    "cutmix/subset/3": "6c97612f3a60cf0d",
    "cutmix/subset/1": "78fa0dfc0a9629a6",
    "cutmix/where/3": "6c97612f3a60cf0d",
    "cutmix/where/1": "78fa0dfc0a9629a6",
}


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_seeded_results_are_unchanged(key):
    name, mode, channels = key.split("/")
    assert fingerprint(SPECS[name], mode, int(channels)) == RECORDED[key]


def test_every_case_is_recorded():
    assert sorted(RECORDED) == sorted(f"{n}/{m}/{c}" for n in SPECS for m in MODES for c in (3, 1))


if __name__ == "__main__":
    for key, value in all_fingerprints().items():
        print(f'    "{key}": "{value}",')
