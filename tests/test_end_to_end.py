"""The whole flow on small generated data: train -> predict/evaluate, resume, errors."""
import csv
import json
import subprocess
import sys

import torch

from run_configs import write_config
from lowres.cli import main
from lowres.run import checkpoint
from lowres.train.loop import train
from lowres.run.log import read_events, read_metrics, read_status

TIMING = {"images_per_s", "seconds", "elapsed"}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_train_then_predict_writes_a_valid_submission(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 0
    for name in ("config.yaml", "metrics.csv", "events.jsonl", "env.json", "status.json",
                 "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / name).exists(), name
    assert read_status(run)["state"] == "finished"
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2"]
    kinds = [e["event"] for e in read_events(run)]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and "stop" in kinds
    # Every val accuracy carries its split size and Wilson bounds; the rule is recorded.
    row = read_metrics(run)[-1]
    n = int(row["val_images"])
    assert n == 24 and float(row["val_acc_low"]) <= float(row["val_acc"]) <= float(row["val_acc_high"])
    best_events = [e for e in read_events(run) if e["event"] == "best"]
    assert best_events and all(e["rule"] == "val_loss" for e in best_events)
    outcomes = json.loads((run / "val_outcomes.json").read_text())
    assert outcomes["images"] == n and outcomes["last"]["epoch"] == 2
    assert outcomes["best"]["epoch"] == best_events[-1]["epoch"]
    sub = tmp_path / "sub.csv"
    assert main(["predict", str(run), "--data", str(tiny_data), "--out", str(sub), "--tta", "flip"]) == 0
    rows = read_csv(sub)
    assert rows[0] == ["Id", "Category"] and len(rows) == 13
    assert [r[0] for r in rows[1:]] == sorted(p.name for p in (tiny_data / "test").iterdir())
    assert all(r[1] in {"0", "1", "2", "3"} for r in rows[1:])
    # An ensemble of the same run twice gives the same answers.
    sub2 = tmp_path / "sub2.csv"
    assert main(["predict", str(run), str(run), "--data", str(tiny_data), "--out", str(sub2),
                 "--tta", "flip"]) == 0
    assert read_csv(sub2) == rows
    assert f"using best.pt = epoch {best_events[-1]['epoch']}" in capsys.readouterr().out
    assert main(["evaluate", str(run)]) == 0
    result = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert 0 <= result["accuracy"] <= 1 and (run / "evaluation" / "confusion.png").exists()
    assert "accuracy" in capsys.readouterr().out


def test_exact_resume_mid_epoch_and_across_stages(tiny_data, tmp_path):
    """Stopped mid-epoch and at a stage boundary, resumed: same weights, same metrics."""
    stages = [{"epochs": 2, "scheduler": {"name": "cosine", "warmup_epochs": 1},
               "augment": [{"op": "hflip", "p": 0.5}, {"op": "erasing", "p": 0.5}]},
              {"epochs": 2, "scheduler": {"name": "plateau", "patience": 0},
               "augment": [{"op": "randaugment", "num_ops": 2}]}]
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=stages, train={"ema": 0.9})
    straight = train(cfg, run_dir=tmp_path / "straight")
    assert straight.state == "finished"
    cut = tmp_path / "cut"
    first = train(cfg, run_dir=cut, pause_after_steps=3)  # 5 steps per epoch: mid-epoch 1
    assert first.state == "stopped" and read_status(cut)["state"] == "stopped"
    assert train(None, resume=cut, pause_after_epochs=1).state == "stopped"  # ends epoch 1
    assert train(None, resume=cut, pause_after_epochs=1).state == "stopped"  # stage boundary
    assert train(None, resume=cut).state == "finished"
    a = checkpoint.load(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = checkpoint.load(cut / "checkpoints" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["ema"]:
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    rows_a, rows_b = read_metrics(tmp_path / "straight"), read_metrics(cut)
    assert len(rows_a) == len(rows_b) == 4
    for ra, rb in zip(rows_a, rows_b):
        assert {k: v for k, v in ra.items() if k not in TIMING} == \
               {k: v for k, v in rb.items() if k not in TIMING}
    assert sum(e["event"] == "resume" for e in read_events(cut)) == 3


def test_time_limit_saves_and_prints_the_resume_command(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(run), "--time-limit", "0.001s"]) == 0
    out = capsys.readouterr().out
    assert f"lowres train --resume {run}" in out
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["position"]["step"] == 1 and state["position"]["epoch"] == 0
    assert main(["train", "--resume", str(run)]) == 0
    assert read_status(run)["state"] == "finished"


def test_a_new_run_never_overwrites_an_existing_one(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 1}])
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 2
    assert "already exists" in capsys.readouterr().err
    # A bad override on resume is refused before anything is written.
    assert main(["train", "--resume", str(run), "train.batch_size=zero"]) == 2
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_dry_run_prints_the_plan_and_writes_nothing(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "forward + backward OK" in out and "LR per epoch" in out
    assert "val 24 images: +-" in out and "best.pt by train.checkpoint_rule=val_loss" in out
    assert "note: the val split has 24 images" in out  # too small to choose among epochs
    assert not (tmp_path / "run").exists()


def test_config_errors_are_one_line(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    proc = subprocess.run([sys.executable, "-m", "lowres", "train", str(cfg), "train.batchsize=8",
                           "--dry-run"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("lowres: error: unknown config key 'train.batchsize' "
                                   "(did you mean 'batch_size'?)")


def test_class_folder_predictions_use_folder_names(tmp_path):
    import numpy as np
    from PIL import Image

    from lowres.data.synthetic import PATTERNS, render

    rng = np.random.default_rng(0)
    for c, name in enumerate(["circle", "square"]):
        d = tmp_path / "data" / "train" / name
        d.mkdir(parents=True)
        for i in range(12):
            Image.fromarray(render(PATTERNS[c * 2], rng, 16)).save(d / f"{i}.png")
    (tmp_path / "data" / "test").mkdir()
    for i in range(3):
        Image.fromarray(render("disc", rng, 16)).save(tmp_path / "data" / "test" / f"t{i}.png")
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "data", stages=[{"epochs": 1}])
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    assert main(["predict", str(tmp_path / "run"), "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "s.csv")]) == 0
    rows = read_csv(tmp_path / "s.csv")[1:]
    assert [r[0] for r in rows] == ["t0.png", "t1.png", "t2.png"]
    assert all(r[1] in {"circle", "square"} for r in rows)


def test_demo_runs_end_to_end(tmp_path, capsys):
    from lowres.cli.demo import run_demo

    result = run_demo(tmp_path / "demo", quick=True)
    assert result["submission"].exists() and 0 <= result["test_accuracy"] <= 1
    assert (result["run_dir"] / "report.html").exists()
    assert "submission" in capsys.readouterr().out


def test_console_script_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "lowres", "--help"], capture_output=True, text=True)
    for command in ("demo", "stats", "train", "predict", "evaluate", "models", "runs", "compare",
                    "sweep", "augment-preview"):
        assert command in proc.stdout


def test_sigterm_saves_a_resumable_checkpoint_and_exits_0(tiny_data, tmp_path):
    import os
    import signal
    import time

    cfg = write_config(tmp_path / "c.yaml", tiny_data, stages=[{"epochs": 200}])
    run = tmp_path / "run"
    env = dict(os.environ, LOWRES_PROGRESS="0")
    proc = subprocess.Popen([sys.executable, "-m", "lowres", "train", str(cfg), "--run-dir",
                             str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.time() + 120
    while not (run / "metrics.csv").exists() and time.time() < deadline:  # one epoch done
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "SIGTERM" in err and f"lowres train --resume {run}" in out
    status = read_status(run)
    assert status["state"] == "stopped" and status["resume"].endswith(str(run))
    assert checkpoint.load(run / "checkpoints" / "last.pt")["position"]["epoch"] >= 1


def test_saved_config_uses_absolute_paths_and_finished_runs_do_not_resume(tiny_data, tmp_path,
                                                                          monkeypatch, capsys):
    import yaml

    monkeypatch.chdir(tiny_data.parent)
    cfg = write_config(tmp_path / "c.yaml", tiny_data.name, stages=[{"epochs": 1}])  # relative root
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--run-dir", str(run)]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["root"] == str(tiny_data.resolve())
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert "already finished" in capsys.readouterr().err


def test_every_epoch_prints_one_summary_line(tiny_data, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data)
    assert main(["train", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and "val loss" in lines[0] and "img/s" in lines[1]
