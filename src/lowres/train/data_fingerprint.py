"""What a run was trained on, in a few numbers, so a resume can tell the data changed.

The batch order, the validation split and the class ids are all functions of the listed
files and their labels. A run resumed after files were added, removed or relabelled (or
with another class count) would silently continue on another split: its val accuracy would
be measured partly on images it trained on. A checkpoint therefore stores a fingerprint of
the listing (counts, and a hash of every (file name, label) pair of each split), and
`check_same_data` compares it at resume and names what changed in one line.
File contents are not hashed (that would read the whole dataset at every start); the decoded
cache's key (data/cache.py) covers sizes and modification times for the decode itself.
"""
from __future__ import annotations

import hashlib

from lowres.errors import DataError


def _listing_hash(paths, labels) -> str:
    digest = hashlib.sha256()
    for path, label in zip(paths, labels):
        digest.update(f"{getattr(path, 'name', path)}\t{int(label)}\n".encode())
    return digest.hexdigest()[:16]


def fingerprint(data) -> dict:
    """Of a `data.prepare.Prepared`: plain values, stored in every checkpoint."""
    index = data.index
    labelled = index.labelled
    return {
        "classes": int(data.num_classes),
        "dataset_classes": int(index.num_classes),
        "labelled_files": len(labelled.paths),
        "labelled_hash": _listing_hash(labelled.paths, labelled.labels),
        "train_images": int(len(data.train_labels)),
        "val_images": int(len(data.val_labels)),
        "image_shape": [int(v) for v in data.image_shape],
    }


def changes(saved: dict, now: dict) -> list[str]:
    """What differs between two fingerprints, in words (empty: the same data)."""
    found = []
    if saved.get("labelled_files") != now.get("labelled_files"):
        diff = now["labelled_files"] - saved["labelled_files"]
        found.append(f"{abs(diff)} labelled image(s) {'added' if diff > 0 else 'removed'} "
                     f"({saved['labelled_files']} -> {now['labelled_files']})")
    elif saved.get("labelled_hash") != now.get("labelled_hash"):
        found.append("labelled files renamed or relabelled (same count)")
    for key, what in (("dataset_classes", "classes in the dataset"), ("classes", "classes used"),
                      ("train_images", "training images"), ("val_images", "validation images"),
                      ("image_shape", "image shape")):
        if key in saved and saved[key] != now.get(key):
            found.append(f"{what} {saved[key]} -> {now.get(key)}")
    return found


def check_same_data(state: dict, data, run_dir) -> None:
    """Refuse to resume a run whose dataset changed since its checkpoint was written
    (checkpoints written before fingerprints existed are not checked)."""
    saved = (state.get("data") or {}).get("fingerprint")
    if not saved:
        return
    found = changes(saved, fingerprint(data))
    if found:
        raise DataError(f"the dataset of {run_dir} changed since its checkpoint: "
                        f"{'; '.join(found)}: resuming would train and validate on another "
                        f"split; restore the data, or start a new run on the new data")
