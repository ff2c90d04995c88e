"""`lowres tune` end to end on a tiny generated dataset: trials are lowres runs, the pruner
stops runs resumably, a stopped search resumes its trials from last.pt, a study made with
another space is refused by name, and the outputs (best.yaml, report.html, runs table)."""
import json

import pytest
import yaml
from run_configs import write_config

from lowres import config as config_mod
from lowres.cli import main
from lowres.errors import LowresError
from lowres.track.compare import compare_runs
from lowres.run.read import PRUNED, run_state
from lowres.run.log import read_events, read_metrics
from lowres.run.listing import format_runs_table, list_runs
from lowres.train.loop import train

optuna = pytest.importorskip("optuna")
from lowres.tune import run_tune  # noqa: E402
from lowres.tune.search import _default_train  # noqa: E402

SPACE = "stages.0.optimizer.lr: {low: 0.001, high: 0.3, log: true}\nmodel.dropout: [0.0, 0.3]\n"


@pytest.fixture
def search_inputs(tmp_path, tiny_data):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, data={"per_class": 12},
                       stages=[{"epochs": 3, "scheduler": {"name": "constant"}}])
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return cfg, space


def test_epoch_hook_stops_a_run_as_pruned_and_it_resumes(tmp_path, tiny_data):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, data={"per_class": 12}, stages=[{"epochs": 3}])
    seen = []

    def hook(row):
        seen.append(row["epoch"])
        return "pruned" if row["epoch"] == 1 else None

    result = train(cfg, run_dir=tmp_path / "run", on_epoch_end=hook)
    assert result.state == "stopped" and seen == [1]
    assert run_state(tmp_path / "run") == PRUNED
    assert [e.get("reason") for e in read_events(tmp_path / "run") if e["event"] == "interrupted"] \
        == ["pruned"]
    first = read_metrics(tmp_path / "run")
    result = train(None, resume=tmp_path / "run", on_epoch_end=hook)
    assert result.state == "finished" and seen == [1, 2, 3]
    rows = read_metrics(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and rows[0] == first[0]


def test_search_trains_trials_as_runs_and_writes_its_outputs(tmp_path, search_inputs):
    cfg, space = search_inputs
    out = tmp_path / "search"
    lines = []
    result = run_tune(cfg, space, 4, out, pruner="none", seed=0, say=lines.append)
    assert [r["name"] for r in result.trials] == ["trial000", "trial001", "trial002", "trial003"]
    assert all(r["state"] == "finished" and r["epochs"] == 3 for r in result.trials)
    assert len(lines) == 4 and lines[-1].startswith("trial003 finished val ")
    assert "done 4, pruned 0, running 0, failed 0 | best " in lines[-1]
    best = max(result.trials, key=lambda r: r["value"])
    assert result.best["name"] == best["name"]
    # best.yaml = the base config with the best values, ready for `lowres train`
    best_cfg = config_mod.load(out / "best.yaml")
    assert best_cfg.stages[0].optimizer.lr == pytest.approx(best["stages.0.optimizer.lr"])
    assert best_cfg.model.dropout == best["model.dropout"]
    # each trial's config holds its values
    trial_cfg = yaml.safe_load((out / "trials" / "trial001" / "config.yaml").read_text())
    assert trial_cfg["model"]["dropout"] == result.trials[1]["model.dropout"]
    html = (out / "report.html").read_text()
    assert "Best trials" in html and best["name"] in html and "data:image/png;base64," in html
    assert (out / "history.png").stat().st_size > 0 and (out / "params.png").stat().st_size > 0
    rows = list_runs(out)
    assert {r["name"] for r in rows} == {f"trials/trial00{i}" for i in range(4)}
    table = format_runs_table(rows)
    assert "PARAMS" in table.splitlines()[0] and "dropout=" in table and "lr=" in table
    # a rerun of a complete search trains nothing more
    again = run_tune(cfg, space, 4, out, pruner="none", say=lines.append)
    assert len(lines) == 4 and len(again.trials) == 4
    assert main(["runs", str(out)]) == 0
    comparison = compare_runs([out], tmp_path / "cmp")
    assert "trial003" in comparison.read_text() and "finished" in comparison.read_text()


def test_pruner_stops_trials_and_they_show_as_pruned(tmp_path, search_inputs, monkeypatch):
    cfg, space = search_inputs
    out = tmp_path / "search"
    # A pruner that stops every trial after its first epoch, from the second trial on.
    monkeypatch.setattr("lowres.tune.search.make_pruner", lambda name, epochs, grace: _AfterOne())
    result = run_tune(cfg, space, 3, out, say=lambda line: None)
    states = [(r["name"], r["state"], r["epochs"]) for r in result.trials]
    assert states == [("trial000", "finished", 3), ("trial001", "pruned", 1),
                      ("trial002", "pruned", 1)]
    assert run_state(out / "trials" / "trial001") == PRUNED
    assert "pruned" in format_runs_table(list_runs(out))
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    assert study.trials[1].intermediate_values == {1: pytest.approx(result.trials[1]["value"])}


class _AfterOne(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return trial.number > 0 and max(trial.intermediate_values, default=0) >= 1


def test_a_stopped_search_resumes_its_trial_from_last_pt(tmp_path, search_inputs):
    """A trial stopped in the middle (a signal) stays RUNNING in the study; the next
    `lowres tune` resumes it from its last.pt: the rows of its first epochs are untouched
    and those epochs are not trained again."""
    cfg, space = search_inputs
    out = tmp_path / "search"
    calls = []

    def stop_first_after_one_epoch(config_path, overrides, run_dir, resume, hook, log):
        calls.append((run_dir.name, resume))
        if len(calls) == 1:
            from lowres.train.loop import train as loop_train

            return loop_train(config_path, overrides, run_dir=run_dir, on_epoch_end=hook,
                              pause_after_epochs=1, out=log)
        return _default_train(config_path, overrides, run_dir, resume, hook, log)

    first = run_tune(cfg, space, 2, out, pruner="none", say=lambda line: None,
                     train_fn=stop_first_after_one_epoch)
    assert first.stopped and calls == [("trial000", False)]
    before = read_metrics(out / "trials" / "trial000")
    assert [int(r["epoch"]) for r in before] == [1]
    second = run_tune(cfg, space, 2, out, pruner="none", say=lambda line: None,
                      train_fn=stop_first_after_one_epoch)
    assert not second.stopped
    assert calls == [("trial000", False), ("trial000", True), ("trial001", False)]
    after = read_metrics(out / "trials" / "trial000")
    assert [int(r["epoch"]) for r in after] == [1, 2, 3] and after[0] == before[0]
    resumes = [e for e in read_events(out / "trials" / "trial000") if e["event"] == "resume"]
    assert [e["epoch"] for e in resumes] == [1]
    assert [r["state"] for r in second.trials] == ["finished", "finished"]


def test_a_study_made_with_another_space_is_refused_by_name(tmp_path, search_inputs):
    cfg, space = search_inputs
    out = tmp_path / "search"
    run_tune(cfg, space, 1, out, pruner="none", say=lambda line: None)
    other = tmp_path / "other.yaml"
    other.write_text("stages.0.optimizer.lr: {low: 0.01, high: 0.3, log: true}\n")
    with pytest.raises(LowresError) as err:
        run_tune(cfg, other, 2, out, pruner="none", say=lambda line: None)
    text = str(err.value)
    assert text.startswith(f"study search in {out.resolve()}/study.db was made with a different space: ")
    assert "it searched model.dropout too" in text and "stages.0.optimizer.lr was float 0.001" in text
    assert text.endswith("; use a new --out or --study-name") and "\n" not in text
    assert json.loads((out / "search.json").read_text())["space"]["model.dropout"] == \
        {"choices": [0.0, 0.3]}


def test_a_watched_search_shows_a_live_bar_with_counts_and_epochs(tmp_path, search_inputs,
                                                                  monkeypatch, capsys):
    cfg, space = search_inputs
    monkeypatch.setenv("LOWRES_PROGRESS", "1")  # as in a terminal
    run_tune(cfg, space, 2, tmp_path / "search", pruner="none", seed=0)
    err = capsys.readouterr().err
    assert "search:" in err and "trial" in err  # the bar: trials ended out of 2
    assert "trial000 epoch 2/3 val " in err  # this worker's trial, epoch by epoch
    assert "done 1, running 0, pruned 0 | best " in err  # the counts and the best so far
    assert "2/2" in err


def test_the_first_rung_comes_after_the_grace_epochs(tmp_path, tiny_data):
    from lowres.errors import ConfigError
    from lowres.tune.search import epochs_and_grace
    from lowres.tune.study import make_pruner

    cfg = write_config(tmp_path / "a.yaml", tiny_data, stages=[{"epochs": 6}])
    assert epochs_and_grace(cfg, []) == (6, 1)
    assert epochs_and_grace(cfg, [], grace_epochs=2) == (6, 2)
    assert epochs_and_grace(cfg, [], grace_epochs=10) == (6, 6)  # never past the last epoch
    with pytest.raises(ConfigError, match="--grace-epochs 0"):
        epochs_and_grace(cfg, [], grace_epochs=0)
    assert make_pruner("asha", 6, 3)._min_resource == 3
    assert make_pruner("hyperband", 6, 2)._min_resource == 2
