import importlib.util

import pytest

import lowres.track.tensorboard as tb


@pytest.fixture(autouse=True)
def fresh_hint(monkeypatch):
    monkeypatch.setattr(tb, "_hinted", False)


def test_missing_package_hints_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tb, "_summary_writer_class", lambda: None)
    a = tb.TensorBoardLogger(tmp_path, enabled=True)
    b = tb.TensorBoardLogger(tmp_path, enabled=True)
    a.log_epoch({"epoch": 1, "val_acc": 0.5})
    a.close()
    b.close()
    err = capsys.readouterr().err
    assert err.count(tb.HINT) == 1 and err.strip() == tb.HINT
    assert a.writer is None and not (tmp_path / "tensorboard").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None,
                    reason="tensorboard is installed here")
def test_really_missing_package(tmp_path, capsys):
    logger = tb.TensorBoardLogger(tmp_path, enabled=True)
    assert logger.writer is None
    assert tb.HINT in capsys.readouterr().err


def test_disabled_is_silent(tmp_path, capsys):
    logger = tb.TensorBoardLogger(tmp_path, enabled=False)
    logger.log_epoch({"epoch": 1})
    logger.close()
    assert capsys.readouterr().err == ""


def test_logs_rows(tmp_path, monkeypatch):
    logged = []

    class Writer:
        def __init__(self, log_dir):
            self.log_dir = log_dir
            self.closed = False

        def add_scalar(self, tag, value, step):
            logged.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            self.closed = True

    monkeypatch.setattr(tb, "_summary_writer_class", lambda: Writer)
    logger = tb.TensorBoardLogger(tmp_path, enabled=True)
    assert logger.writer.log_dir == str(tmp_path / "tensorboard")
    logger.log_epoch({"epoch": 3, "stage": 0, "stage_name": "s1", "lr": 0.1, "val_acc": 0.5,
                      "ema_val_acc": None, "train_loss": "", "val_loss": float("nan")})
    assert sorted(logged) == [("accuracy/val", 0.5, 3), ("lr", 0.1, 3), ("stage", 0.0, 3)]
    writer = logger.writer
    logger.close()
    assert writer.closed and logger.writer is None
