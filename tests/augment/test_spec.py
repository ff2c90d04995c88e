"""validate_spec / build_pipeline: one-line ConfigErrors that name the config key."""
import pytest

from lowres.augment import OPS, build_pipeline, validate_spec
from lowres.config import SEED_STAGE1_AUGMENT, SEED_STAGE2_AUGMENT
from lowres.errors import ConfigError

WHERE = "stages.0.augment"


def error_of(spec) -> str:
    with pytest.raises(ConfigError) as info:
        validate_spec(spec, where=WHERE)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_seed_specs_and_empty_spec_are_valid():
    for spec in (SEED_STAGE1_AUGMENT, SEED_STAGE2_AUGMENT, []):
        validate_spec(spec, where=WHERE)
        build_pipeline(spec, [0.5, 0.5, 0.5], [0.2, 0.2, 0.2], 10)


def test_every_op_builds_with_defaults():
    for name in OPS:
        spec = {"op": name}
        if name == "random_choice":
            spec["ops"] = [{"op": "hflip"}]
        if name == "translate":
            spec["fraction"] = 0.1
        build_pipeline([spec], [0.5] * 3, [0.2] * 3, 10)


def test_unknown_op_suggests_the_nearest():
    message = error_of([{"op": "hflip"}, {"op": "grayscale"}, {"op": "randaugmnt"}])
    assert message == ("config key 'stages.0.augment.2.op': unknown op 'randaugmnt' "
                       "(did you mean 'randaugment'?)")


def test_unknown_parameter_suggests_the_nearest():
    message = error_of([{"op": "hflip"}, {"op": "gaussian_blur", "sigmaa": [0.1, 2.0]}])
    assert message.startswith("config key 'stages.0.augment.1.sigmaa': unknown parameter")
    assert "(did you mean 'sigma'?)" in message


@pytest.mark.parametrize("spec,key", [
    ([{"op": "hflip", "p": 1.5}], "0.p"),
    ([{"op": "hflip", "p": "half"}], "0.p"),
    ([{"op": "erasing", "scale": [0.5, 0.1]}], "0.scale"),
    ([{"op": "erasing", "value": "noise"}], "0.value"),
    ([{"op": "gaussian_blur", "kernel_size": 4}], "0.kernel_size"),
    ([{"op": "randaugment", "magnitude": 31}], "0.magnitude"),
    ([{"op": "randaugment", "num_ops": 2.5}], "0.num_ops"),
    ([{"op": "color_jitter", "hue": 0.7}], "0.hue"),
    ([{"op": "random_choice", "ops": [{"op": "hflip"}, {"op": "vflp"}]}], "0.ops.1.op"),
    ([{"op": "random_choice", "ops": [{"op": "hflip"}], "weights": [1, 2]}], "0.weights"),
    ([{"op": "random_choice", "ops": [{"op": "mixup"}]}], "0.ops.0.op"),
    ([{"op": "translate"}], "0.fraction"),
    ([{"op": "augmix", "severity": 11}], "0.severity"),
    ([{"p": 0.5}], "0.op"),
    (["hflip"], "0"),
])
def test_bad_values_name_the_key(spec, key):
    assert error_of(spec).startswith(f"config key '{WHERE}.{key}': ")


def test_mix_ops_must_come_last():
    message = error_of([{"op": "mixup"}, {"op": "hflip"}])
    assert message.startswith(f"config key '{WHERE}.1.op': image op 'hflip' comes after mix op")
    message = error_of([{"op": "mixup"}, {"op": "cutmix"}])
    assert "mixup_cutmix" in message
    validate_spec([{"op": "hflip"}, {"op": "mixup_cutmix", "switch_prob": 0.3}], where=WHERE)


def test_spec_must_be_a_list():
    assert error_of({"op": "hflip"}).startswith(f"config key '{WHERE}': expected a list")


def test_describe_has_one_line_per_op():
    pipe = build_pipeline(SEED_STAGE2_AUGMENT + [{"op": "mixup", "alpha": 0.2}],
                          [0.5] * 3, [0.2] * 3, 10)
    lines = pipe.describe().splitlines()
    assert [line.split("(")[0] for line in lines] == [
        "random_choice", "randaugment", "erasing", "mixup", "normalize"]
    assert pipe.mixes
