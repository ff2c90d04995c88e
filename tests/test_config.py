import pytest

from lowres import config as config_mod
from lowres.config import Config, seed_final_stages
from lowres.errors import ConfigError


def build(values=None, *overrides, root=True):
    values = dict(values or {})
    if root:
        values.setdefault("data", {})["root"] = "/data"
    return config_mod.build(values, list(overrides))


def test_only_data_root_is_needed_and_defaults_are_the_seed_recipe():
    cfg = build()
    assert cfg.model.name == "resnet50" and cfg.model.stem == "k4" and cfg.model.dropout == 0.8
    assert cfg.model.init == "he_normal"
    assert cfg.train.batch_size == 200 and cfg.train.label_smoothing == 0.1
    assert cfg.data.val_fraction == 0.01
    assert [s.epochs for s in cfg.stages] == [70, 30, 1]
    s1 = cfg.stages[0]
    assert (s1.optimizer.name, s1.optimizer.lr, s1.optimizer.weight_decay) == ("sgd", 0.1, 1e-4)
    assert (s1.scheduler.name, s1.scheduler.patience, s1.scheduler.cooldown) == ("plateau", 7, 1)
    assert cfg.stages[2].optimizer.lr == 0.01
    assert [op["op"] for op in cfg.stages[1].augment] == ["random_choice", "randaugment", "erasing"]


def test_missing_root_is_one_clear_error():
    with pytest.raises(ConfigError, match="data.root"):
        config_mod.build({})


def test_unknown_key_names_the_nearest_valid_one():
    with pytest.raises(ConfigError, match=r"unknown config key 'train.batchsize'.*'batch_size'"):
        build({"train": {"batchsize": 3}})
    with pytest.raises(ConfigError, match=r"'stages.0.optimizer.momentun'.*'momentum'"):
        build({}, "stages.0.optimizer.momentun=0.8")


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"train.batch_size.*integer.*'many'"):
        build({}, "train.batch_size=many")
    with pytest.raises(ConfigError, match="model.dropout.*number"):
        build({"model": {"dropout": "high"}})


def test_bad_choice_suggests_a_valid_one():
    with pytest.raises(ConfigError, match=r"stages.1.scheduler.name.*'cosine'"):
        build({}, "stages.1.scheduler.name=cosin")


def test_overrides_reach_list_items_and_parse_values():
    cfg = build({}, "stages.0.epochs=3", "stages.2.optimizer.lr=0.02", "model.name=resnet18",
                "data.classes=10", "stages.0.augment.1.p=0.3")
    assert cfg.stages[0].epochs == 3 and cfg.stages[2].optimizer.lr == 0.02
    assert cfg.model.name == "resnet18" and cfg.data.classes == 10
    assert cfg.stages[0].augment[1]["p"] == 0.3


def test_list_index_out_of_range_is_explained():
    with pytest.raises(ConfigError, match=r"stages.5.*3 items"):
        build({}, "stages.5.epochs=2")


def test_stages_from_a_file_fill_their_own_defaults():
    cfg = build({"stages": [{"epochs": 4, "optimizer": {"lr": 0.05}}]})
    assert len(cfg.stages) == 1
    assert cfg.stages[0].optimizer.lr == 0.05 and cfg.stages[0].optimizer.momentum == 0.9
    assert cfg.stages[0].scheduler.name == "plateau"


def test_round_trip_through_yaml(tmp_path):
    cfg = build({}, "stages.0.epochs=5")
    config_mod.save(cfg, tmp_path / "c.yaml")
    again = config_mod.load(tmp_path / "c.yaml")
    assert config_mod.to_dict(again) == config_mod.to_dict(cfg)


def test_bad_augment_op_is_reported_with_its_key():
    with pytest.raises(ConfigError, match=r"stages.0.augment.0.*randaugment"):
        build({}, "stages.0.augment.0.op=randaugmnt")


def test_carrying_the_optimizer_over_needs_the_same_kind():
    with pytest.raises(ConfigError, match="reset_optimizer"):
        build({}, "stages.1.reset_optimizer=false", "stages.1.optimizer.name=adam")
    assert build({}, "stages.1.reset_optimizer=false").stages[1].reset_optimizer is False


def test_yaml_errors_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config_mod.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        config_mod.load(tmp_path / "missing.yaml")


def test_seed_final_stages_are_independent_copies():
    a, b = seed_final_stages(), seed_final_stages()
    a[0].augment[0]["op"] = "changed"
    assert b[0].augment[0]["op"] == "random_choice"
    assert Config().stages[0].augment[0]["op"] == "random_choice"


def test_exponents_without_a_dot_are_numbers():
    cfg = build({"stages": [{"optimizer": {"weight_decay": "5e-4"}}]}, "train.ema=1e-3")
    assert cfg.stages[0].optimizer.weight_decay == 5e-4 and cfg.train.ema == 1e-3
