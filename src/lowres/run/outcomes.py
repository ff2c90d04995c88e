"""Which val images a run got right, at its best.pt epoch and its last epoch: one bit each.

Two accuracies on the same images are far more comparable than their intervals suggest:
most images are right (or wrong) for both runs, and only the disagreements carry evidence
of a difference. `val_outcomes.json` keeps what a paired test needs:

    {"split": "<sha256 of the val images and labels>", "images": N,
     "last": {"epoch": E, "correct": "<base64 of numpy.packbits>"},
     "best": {"epoch": E, "correct": "..."}}

The split fingerprint tells `lowres compare` whether two runs saw the same val images (same
data, val_fraction and seed) in the same order.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lowres.basics.disk import replace_text

FILENAME = "val_outcomes.json"

_fingerprints: dict[tuple, str] = {}


def split_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the val images and labels (cached: a run hashes its split once)."""
    key = (id(images), images.shape, id(labels), len(labels))
    if key not in _fingerprints:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(images).tobytes())
        _fingerprints.clear()  # one run at a time: keep one entry
        _fingerprints[key] = h.hexdigest()[:32]
    return _fingerprints[key]


def _encode(correct: np.ndarray) -> str:
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def _decode(text: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))
    return bits[:n].astype(bool)


def record_val_outcomes(run_dir: str | Path, images: np.ndarray, labels: np.ndarray, epoch: int,
                        last_correct: np.ndarray, best_correct: np.ndarray | None) -> None:
    """Update the run's val_outcomes.json: `last` always, `best` when best.pt changed."""
    path = Path(run_dir) / FILENAME
    split = split_fingerprint(images, labels)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    if record.get("split") != split:
        record = {}
    record.update(split=split, images=int(len(labels)),
                  last={"epoch": int(epoch), "correct": _encode(last_correct)})
    if best_correct is not None:
        record["best"] = {"epoch": int(epoch), "correct": _encode(best_correct)}
    replace_text(path, json.dumps(record) + "\n")


@dataclass
class ValOutcomes:
    split: str
    images: int
    correct: dict[str, np.ndarray]  # "best" / "last" -> bool [images]
    epochs: dict[str, int]


def read_val_outcomes(run_dir: str | Path) -> ValOutcomes | None:
    """The run's per-image outcomes, or None (older run, no val split, unreadable file)."""
    try:
        record = json.loads((Path(run_dir) / FILENAME).read_text())
        n = int(record["images"])
        correct, epochs = {}, {}
        for which in ("best", "last"):
            if which in record:
                correct[which] = _decode(record[which]["correct"], n)
                epochs[which] = int(record[which]["epoch"])
        return ValOutcomes(str(record["split"]), n, correct, epochs)
    except (OSError, ValueError, KeyError, TypeError):
        return None
