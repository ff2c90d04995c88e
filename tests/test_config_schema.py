"""The converter is generic: a field's annotation (type, Literal, Annotated checks and
description) is all it reads, whatever the schema."""
from dataclasses import dataclass, field
from typing import Annotated, Literal

import pytest

from lowres.basics.checks import integer, number, one_of
from lowres.config.tree import checked, from_dict, keys
from lowres.errors import ConfigError


@dataclass
class Inner:
    ratio: Annotated[float, number(0.0, 1.0), "a fraction"] = 0.5


@dataclass
class Toy:
    switch: Annotated[Literal["auto", "yes", "no"], "yes/no from YAML booleans"] = "auto"
    count: Annotated[int | None, integer(1), "at least one, or null"] = None
    colour: Annotated[str, one_of(("red", "green")), "a named colour"] = "red"
    inner: Inner = field(default_factory=Inner)


def test_yaml_booleans_become_yes_and_no_where_a_choice_offers_them():
    assert from_dict(Toy, {"switch": False}).switch == "no"
    assert from_dict(Toy, {"switch": True}).switch == "yes"


def test_checks_run_on_converted_values_and_not_on_null():
    assert from_dict(Toy, {"inner": {"ratio": "5e-1"}}).inner.ratio == 0.5
    assert from_dict(Toy, {"count": None}).count is None
    with pytest.raises(ConfigError, match=r"^config key 'count': must be at least 1, got 0$"):
        from_dict(Toy, {"count": 0})
    with pytest.raises(ConfigError, match=r"^config key 'inner.ratio': must be at most 1.0, got 2.0$"):
        from_dict(Toy, {"inner": {"ratio": 2}})


def test_bad_names_suggest_the_nearest_and_unknown_keys_too():
    with pytest.raises(ConfigError, match=r"'colour': 'gren' is not one of red, green "
                                          r"\(did you mean 'green'\?\)"):
        from_dict(Toy, {"colour": "gren"})
    with pytest.raises(ConfigError, match=r"'switch': 'maybe' is not one of auto, yes, no"):
        from_dict(Toy, {"switch": "maybe"})
    with pytest.raises(ConfigError, match=r"unknown config key 'inner.ration'.*'ratio'"):
        from_dict(Toy, {"inner": {"ration": 1}})


def test_a_dataclass_built_in_code_gets_the_same_checks():
    with pytest.raises(ConfigError, match=r"config key 'toy.colour'"):
        checked(Toy(colour="blue"), "toy")
    assert checked(Toy(count=2), "toy") == Toy(count=2)


def test_keys_list_every_leaf_with_what_it_allows():
    rows = {k.path: k for k in keys(Toy)}
    assert list(rows) == ["switch", "count", "colour", "inner.ratio"]
    assert rows["inner.ratio"].allowed == "[0.0, 1.0]" and rows["inner.ratio"].doc == "a fraction"
    assert rows["colour"].allowed == "one of red, green" and rows["count"].allowed == ">= 1"
