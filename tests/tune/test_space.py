"""The search space: its YAML format, and every kind of bad input as one ConfigError line
raised before a study or a folder exists."""
import pytest
from run_configs import write_config

from lowres.cli import main
from lowres.errors import ConfigError
from lowres.tune.space import check_against_config, load_space, parse_space


def test_ranges_log_ranges_ints_and_choices():
    space = parse_space({"stages.0.optimizer.lr": {"low": 0.01, "high": 0.5, "log": True},
                         "model.dropout": {"low": 0, "high": 0.5},
                         "stages.0.epochs": {"low": 2, "high": 8},
                         "train.label_smoothing": {"low": 0.0, "high": 0.2, "step": 0.05},
                         "model.name": ["resnet8", "cnn_small"]})
    kinds = {p.key: (p.kind, p.log) for p in space.params}
    assert kinds == {"stages.0.optimizer.lr": ("float", True), "model.dropout": ("float", False),
                     "stages.0.epochs": ("int", False), "train.label_smoothing": ("float", False),
                     "model.name": ("choice", False)}
    assert space.params[1].low == 0.0 and isinstance(space.params[1].low, float)
    assert space.params[4].choices == ("resnet8", "cnn_small")


@pytest.mark.parametrize("data, words", [
    ({"model.dropout": {"low": 0.5, "high": 0.5}}, "empty range (low 0.5 >= high 0.5)"),
    ({"model.dropout": {"low": 0.6, "high": 0.1}}, "empty range"),
    ({"model.dropout": {"low": 0.1}}, "needs both low and high"),
    ({"model.dropout": {"low": 0.1, "hi": 0.2}}, "unknown field(s) hi"),
    ({"model.dropout": {"low": "a", "high": 0.2}}, "must be numbers"),
    ({"model.dropout": 0.3}, "expected {low: A, high: B}"),
    ({"model.name": []}, "no choices"),
    ({"model.name": ["a", "a"]}, "lists a choice twice"),
    ({"stages.0.optimizer.lr": {"low": 0, "high": 1, "log": True}}, "needs low > 0"),
    ([1, 2], "expected a mapping"),
    ({}, "expected a mapping"),
])
def test_malformed_space_is_one_line(data, words):
    with pytest.raises(ConfigError) as err:
        parse_space(data, "space.yaml")
    assert words in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("space.yaml")


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("model.dropout: {low: 0, high: 0.5\nmodel.name: [a\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+\)"):
        load_space(path)


def test_unknown_key_and_refused_value_are_caught_by_the_config(tmp_path, tiny_data):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    with pytest.raises(ConfigError) as err:
        check_against_config(parse_space({"model.dropoot": {"low": 0.0, "high": 0.5}}), cfg, [])
    assert str(err.value).startswith("search space key model.dropoot = 0.0: ")
    with pytest.raises(ConfigError, match="search space key model.name = 'resnet9000'"):
        check_against_config(parse_space({"model.name": ["resnet8", "resnet9000"]}), cfg, [])
    check_against_config(parse_space({"model.dropout": {"low": 0.0, "high": 0.5}}), cfg, [])


@pytest.mark.parametrize("space_text, storage, words", [
    ("model.dropout: {low: 0.5, high: 0.1}\n", None, "empty range"),
    ("model.dropoot: {low: 0.0, high: 0.5}\n", None, "model.dropoot"),
    ("model.dropout: [0.1, 0.2]\n", "postgresql+psycopg2://nobody@127.0.0.1:9/none",
     "cannot open the study database postgresql+psycopg2://"),
    ("model.dropout: [0.1, 0.2]\n", "sqlite:////nonexistent-dir/x/study.db",
     "cannot open the study database sqlite:////nonexistent-dir/x/study.db"),
    ("model.dropout: [0.1, 0.2]\n", "notadb://x", "cannot open the study database notadb://x"),
])
def test_cli_bad_input_one_line_and_nothing_created(tmp_path, tiny_data, capsys, space_text,
                                                    storage, words):
    pytest.importorskip("optuna")
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    (tmp_path / "space.yaml").write_text(space_text)
    out = tmp_path / "search"
    argv = ["tune", str(cfg), "--space", str(tmp_path / "space.yaml"), "--trials", "2",
            "--out", str(out)] + (["--storage", storage] if storage else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not out.exists()


def test_missing_optuna_names_the_extra(tmp_path, tiny_data, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError("No module named 'optuna'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    (tmp_path / "space.yaml").write_text("model.dropout: [0.1, 0.2]\n")
    assert main(["tune", str(cfg), "--space", str(tmp_path / "space.yaml"), "--trials", "1",
                 "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.strip() == \
        "lowres: error: lowres tune needs Optuna: pip install 'lowres[tune]'"
