"""The two ways to extend the augmentation, end to end:

* an augmentation op is available to configs by being defined: a subclass of Op with its
  own `name` registers itself (no list to keep by hand);
* an op joins RandAugment / TrivialAugmentWide / AugMix by a row in auto_ops.AUTO_OPS:
  the policies draw it and apply it, photometric or geometric, with no other edit.
"""
from typing import Any

import pytest
import torch

from lowres.augment import OPS, auto_ops, build_pipeline, sampling, validate_spec
from lowres.augment.base import Op, apply_masked, combine, forced_masking
from lowres.basics.checks import Param, probability
from lowres.augment.pipeline import to_float
from lowres.errors import ConfigError

MEAN, STD = [0.5] * 3, [0.25] * 3


@pytest.fixture
def scratch_ops():
    """Op classes defined in a test are forgotten afterwards."""
    saved = dict(OPS)
    yield
    OPS.clear()
    OPS.update(saved)


def define_invert() -> type[Op]:
    class Invert(Op):
        """1 - x on the samples that drew it."""
        name = "test_invert"
        PARAMS = {"p": Param(0.5, probability, "probability of inverting a sample")}

        def draw(self, generator: torch.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
            return {"selected": sampling.coin(generator, shape[0], self.p)}

        def apply(self, images, drawn, mask=None):
            return apply_masked(images, combine(drawn["selected"], mask), lambda x, _: 1.0 - x)
    return Invert


def one_image_many_times(b: int = 256) -> torch.Tensor:
    image = torch.randint(0, 256, (1, 3, 12, 10), generator=torch.Generator().manual_seed(0),
                          dtype=torch.uint8)
    return image.expand(b, -1, -1, -1).contiguous()


@pytest.mark.parametrize("mode", ["subset", "where"])
def test_a_defined_op_class_is_accepted_by_configs_and_the_pipeline(scratch_ops, mode):
    invert = define_invert()
    assert OPS["test_invert"] is invert
    spec = [{"op": "random_choice", "ops": [{"op": "test_invert", "p": 1.0}, {"op": "hflip"}]},
            {"op": "test_invert", "p": 0.5}]
    validate_spec(spec)
    with pytest.raises(ConfigError, match=r"'augment\.1\.p'"):
        validate_spec([{"op": "hflip"}, {"op": "test_invert", "p": 2}])
    pipe = build_pipeline([{"op": "test_invert", "p": 0.5}], MEAN, STD, 10)
    assert "test_invert(p=0.5)" in pipe.describe()
    images = one_image_many_times()
    with forced_masking(mode):
        out, _ = pipe.augment(images, torch.zeros(len(images)), torch.Generator().manual_seed(1))
    x = to_float(images)
    inverted = torch.isclose(out, 1.0 - x, atol=1e-6).flatten(1).all(1)
    kept = torch.equal(out[~inverted], x[~inverted])
    assert kept and 0.35 < inverted.float().mean().item() < 0.65


def test_two_op_classes_cannot_share_a_name(scratch_ops):
    define_invert()
    with pytest.raises(TypeError, match="test_invert"):
        class Other(Op):
            name = "test_invert"


def test_a_base_class_without_its_own_name_is_not_an_op(scratch_ops):
    class Base(Op):
        pass

    class Child(Base):
        name = "test_child"
    assert "test_child" in OPS and Base not in OPS.values()


def invert_row() -> auto_ops.AutoOp:
    def invert(images, magnitude, inplace):
        return images.neg_().add_(1.0) if inplace else 1.0 - images
    return auto_ops.AutoOp("Invert", pixels=invert, augmix="never")


def rotate_half_turn_row() -> auto_ops.AutoOp:
    # A geometric row states its part of the affine; it shares the policies' single warp.
    return auto_ops.AutoOp("HalfTurn", augmix="never",
                           affine=lambda m: {"angle": torch.full_like(m, 180.0)})


@pytest.mark.parametrize("mode", ["subset", "where"])
@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment"])
def test_a_table_row_is_drawn_and_applied_by_the_policies(monkeypatch, policy, mode):
    monkeypatch.setattr(auto_ops, "AUTO_OPS", auto_ops.AUTO_OPS + (invert_row(), rotate_half_turn_row()))
    assert [op.name for op in auto_ops.ops_for(policy)][-2:] == ["Invert", "HalfTurn"]
    spec = [{"op": policy, "num_ops": 1} if policy == "randaugment" else {"op": policy}]
    images = one_image_many_times(640)
    with forced_masking(mode):
        out, _ = build_pipeline(spec, MEAN, STD, 10).augment(
            images, torch.zeros(len(images)), torch.Generator().manual_seed(3))
    x = to_float(images)
    # 16 ops drawn uniformly: about 40 samples each; these two results only come from them.
    inverted = torch.isclose(out, 1.0 - x, atol=1e-6).flatten(1).all(1).sum().item()
    half_turns = (out == x[:1].flip(2, 3)).flatten(1).all(1).sum().item()
    assert 15 < inverted < 80 and 15 < half_turns < 80


@pytest.mark.parametrize("row", [
    dict(magnitudes={"randaugment": auto_ops.linear(1.0)}),  # a policy without a table
    dict(pixels=lambda x, m, inplace: x, affine=lambda m: {}),
    dict(augmix="sometimes")])
def test_a_malformed_row_fails_when_the_table_is_built(row):
    with pytest.raises(ValueError, match="Toy"):
        auto_ops.AutoOp("Toy", **row)
