"""`lowres options` is generated from the schema, and a scheduler or model registered in its
owner's table is known to the config, the listing and the training code without other edits."""
import pytest
from torch import nn

from lowres import config
from lowres.cli import main
from lowres.config import Config, StageConfig, to_dict
from lowres.cli.options import option_lines, option_rows
from lowres.errors import ConfigError
from lowres.models import zoo
from lowres.train.optim import OPTIMIZERS
from lowres.train.schedules import SCHEDULES, Rule, Schedule


def _leaf_paths(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaf_paths(value, f"{prefix}{key}.")
        elif key == "stages":
            yield from _leaf_paths(to_dict(StageConfig()), f"{prefix}{key}.N.")
        else:
            yield prefix + key


def _line(path: str, section=None) -> str:
    (line,) = [ln for ln in option_lines(section) if ln.startswith(path + " = ")]
    return line


def test_the_listing_has_every_schema_key_with_a_description():
    rows = option_rows()
    assert {r.path for r in rows} == set(_leaf_paths(to_dict(Config())))
    assert all(r.doc for r in rows)


def test_choices_and_ranges_come_from_their_owners():
    assert _line("stages.N.scheduler.name").endswith(f"one of {', '.join(SCHEDULES)})")
    assert _line("stages.N.optimizer.name").endswith(f"one of {', '.join(OPTIMIZERS)})")
    assert _line("model.drop_path") == "model.drop_path = 0.0  (float; [0.0, 0.9])"
    assert _line("data.resident") == "data.resident = auto  (str; one of auto, yes, no)"


def test_a_section_narrows_the_listing_and_a_typo_is_one_line(capsys):
    assert main(["options", "stages.0.scheduler"]) == 0
    keys = [ln.split(" = ")[0] for ln in capsys.readouterr().out.splitlines() if " = " in ln]
    assert keys and all(k.startswith("stages.N.scheduler.") for k in keys)
    with pytest.raises(ConfigError, match=r"'modle'.*did you mean 'model'"):
        option_lines("modle")


def test_to_add_a_scheduler_edit_only_the_schedules_table(monkeypatch):
    with pytest.raises(ConfigError, match="stages.0.scheduler.name.*'halving' is not one of"):
        config.build({"data": {"root": "/d"}}, ["stages.0.scheduler.name=halving"])
    halving = Rule(lambda s, step: s.base_lr / 2 ** (step // s.spe), drops=True)
    monkeypatch.setitem(SCHEDULES, "halving", halving)

    cfg = config.build({"data": {"root": "/d"}}, ["stages.0.scheduler.name=halving"])
    assert "halving" in _line("stages.N.scheduler.name")
    schedule = Schedule(cfg.stages[0].scheduler, 0.8, steps_per_epoch=10, epochs=3)
    assert schedule.known_in_advance and schedule.epoch_lrs() == [0.8, 0.4, 0.2]
    assert schedule.epoch_end({}) is True  # a drop: it feeds stages.N.stop.after_lr_drop


def test_to_add_a_model_edit_only_its_family_module_and_the_zoo_registry(monkeypatch):
    def tiny(stem, in_channels, drop_path, image_size):
        model = nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        model.fc = nn.Identity()
        return model, 4, "fc"

    monkeypatch.setitem(zoo._REGISTRY, "tiny", (tiny, "a test model"))
    cfg = config.build({"data": {"root": "/d"}}, ["model.name=tiny", "model.head=mlp",
                                                  "model.head_hidden=8"])
    model = zoo.build_model(cfg.model, num_classes=3)
    assert isinstance(model.fc, nn.Sequential) and model.fc[-1].out_features == 3
    assert "tiny" in zoo.model_names()
