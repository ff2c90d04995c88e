"""Promise 8: resuming a run whose dataset changed (files added or removed, another class
count, relabelled files) stops with one line saying what changed, and touches nothing."""
import csv
import shutil

import pytest

from run_configs import write_config, error_lines
from lowres.cli import main
from lowres.train.loop import train


def _add_files(root):
    for i, src in enumerate(sorted((root / "trainval").iterdir())[:3]):
        shutil.copyfile(src, root / "trainval" / f"extra{i}.png")
    with open(root / "labels.csv", "a", newline="") as f:
        csv.writer(f).writerows([[f"extra{i}.png", 0] for i in range(3)])


def _remove_files(root):
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))
    for r in rows[-2:]:
        (root / "trainval" / r[0]).unlink()
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows[:-2])


def _relabel(root):
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))
    rows[1][1], rows[2][1] = rows[2][1], rows[1][1]
    if rows[1][1] == rows[2][1]:
        rows[1][1] = str((int(rows[1][1]) + 1) % 4)
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


def _new_class(root):
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))
    for r in rows[1:4]:
        r[1] = "4"
    with open(root / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


CHANGES = {"files added": (_add_files, "3 labelled image(s) added"),
           "files removed": (_remove_files, "2 labelled image(s) removed"),
           "relabelled": (_relabel, "relabelled"),
           "another class count": (_new_class, "classes in the dataset 4 -> 5")}


@pytest.mark.parametrize("how", sorted(CHANGES))
def test_resume_on_changed_data_stops_saying_what_changed(tiny_data, tmp_path, capsys, how):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    cfg = write_config(tmp_path / "c.yaml", data)
    run = tmp_path / "run"
    assert train(cfg, run_dir=run, pause_after_steps=2).state == "stopped"
    before = (run / "checkpoints" / "last.pt").read_bytes()
    change, words = CHANGES[how]
    change(data)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "changed since its checkpoint" in err[0] and words in err[0], err
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
