"""Promise 3: a torn or corrupted checkpoint is found (CRC-32 of every record, format and
kind), resume falls back to the one before it and says so in one line; a damaged file
never replaces a good one; predict and evaluate on a damaged checkpoint: one line, exit 2."""
import shutil
import struct
import zipfile

import pytest
import torch

from run_configs import write_config, error_lines
from lowres.cli import main
from lowres.errors import LowresError
from lowres.run.log import read_events, read_metrics
from lowres.run import checkpoint
from lowres.train.loop import train


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _zero_fill(path):
    path.write_bytes(bytes(path.stat().st_size))


def _flip_a_byte(path):  # inside the weights: the archive still opens, a CRC does not match
    with zipfile.ZipFile(path) as archive:
        biggest = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[biggest.header_offset + 26:
                                                    biggest.header_offset + 30])
    start = biggest.header_offset + 30 + name_len + extra_len  # the record's own bytes
    data[start + biggest.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _wrong_file(path):  # a best.pt copied over last.pt: a valid checkpoint, not a resumable one
    shutil.copyfile(path.with_name("best.pt"), path)


def _foreign_file(path):  # some other torch file
    torch.save({"weights": torch.ones(3)}, path)


DAMAGE = {"truncated": _truncate, "zero-filled": _zero_fill, "bit flip": _flip_a_byte,
          "best.pt copied over it": _wrong_file, "another torch file": _foreign_file}


@pytest.fixture(scope="module")
def paused_run(tiny_data, tmp_path_factory):
    """A run paused after epoch 1, with a checkpoint after every step (so last.prev.pt is
    the checkpoint one step before last.pt)."""
    root = tmp_path_factory.mktemp("paused")
    cfg = write_config(root / "c.yaml", tiny_data, train={"checkpoint_minutes": 1e-9})
    assert train(cfg, run_dir=root / "run", pause_after_epochs=1).state == "stopped"
    assert (root / "run" / "checkpoints" / "last.prev.pt").is_file()
    return root / "run"


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_resume_falls_back_to_the_previous_checkpoint(paused_run, tmp_path, capsys, how):
    run = tmp_path / "run"
    shutil.copytree(paused_run, run)
    last = run / "checkpoints" / "last.pt"
    prev_position = checkpoint.load(run / "checkpoints" / "last.prev.pt")["position"]
    DAMAGE[how](last)
    assert train(None, resume=run).state == "finished"
    err = [line for line in capsys.readouterr().err.splitlines() if "last.prev.pt" in line]
    assert len(err) == 1 and f"step {prev_position['step']}" in err[0], err
    assert (run / "checkpoints" / "last.damaged.pt").is_file()  # kept, for a look
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2"]
    assert any("resuming from last.prev.pt" in e.get("message", "") for e in read_events(run))
    assert checkpoint.load(last)["position"]["stage"] == 1  # the new last.pt is whole


def test_with_both_checkpoints_damaged_resume_stops_in_one_line(paused_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(paused_run, run)
    _truncate(run / "checkpoints" / "last.pt")
    _zero_fill(run / "checkpoints" / "last.prev.pt")
    assert main(["train", "--resume", str(run)]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "damaged" in err[0] and "last.prev.pt" in err[0]


@pytest.mark.parametrize("how", ["truncated", "zero-filled", "bit flip"])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_predict_and_evaluate_on_a_damaged_checkpoint_say_one_line(paused_run, tiny_data, tmp_path,
                                                                   capsys, how, command):
    run = tmp_path / "run"
    shutil.copytree(paused_run, run)
    DAMAGE[how](run / "checkpoints" / "best.pt")
    args = [command, str(run)] + (["--data", str(tiny_data), "--out", str(tmp_path / "s.csv")]
                                  if command == "predict" else [])
    assert main(args) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "best.pt" in err[0] and "damaged" in err[0], err


def test_a_checkpoint_that_reads_back_damaged_never_replaces_the_good_one(paused_run, tmp_path,
                                                                          monkeypatch):
    best = tmp_path / "best.pt"
    shutil.copyfile(paused_run / "checkpoints" / "best.pt", best)
    before = best.read_bytes()
    state = checkpoint.load(best)
    real_save = torch.save

    def tearing_save(obj, f, *args, **kwargs):  # a write the disk gets wrong
        real_save(obj, f, *args, **kwargs)
        f.seek(f.tell() // 2)
        f.write(b"\0" * 64)

    monkeypatch.setattr(checkpoint.torch, "save", tearing_save)
    with pytest.raises(LowresError, match="reads back damaged.*previous best.pt is kept"):
        checkpoint.save(state, best)
    assert best.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp*"))
