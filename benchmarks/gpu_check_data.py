"""Pack a class-balanced subset of tiny40 for `make gpu-check` to carry to a GPU machine.

The GPU machine has no network and does not see ../shared; what it needs travels with the
working tree (64 MiB in all). This writes data/gpu-check/tiny40-subset.tar.gz (git-ignored):
--per-class images of each of the 200 classes (the JPEG bytes as they are, ~27 MB for
250) with labels.csv and classes.csv, and --test unlabelled test images.

    python benchmarks/gpu_check_data.py [--per-class 250] [--test 500] [--shared ../shared]
"""
from __future__ import annotations

import argparse
import csv
import io
import tarfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "gpu-check" / "tiny40-subset.tar.gz"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=250)
    ap.add_argument("--test", type=int, default=500, help="unlabelled test images to include")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    source = args.shared / "datasets" / "tiny40"
    if not (source / "trainval.tar.gz").is_file():
        raise SystemExit(f"gpu_check_data: {source}/trainval.tar.gz not found: pass --shared DIR "
                         f"(the folder that holds datasets/tiny40)")
    with open(source / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    by_class: dict[str, list[str]] = defaultdict(list)
    for image_id, category in rows:
        if len(by_class[category]) < args.per_class:
            by_class[category].append(image_id)
    keep = {image_id for ids in by_class.values() for image_id in ids}
    labels = "Id,Category\n" + "".join(f"{i},{c}\n" for i, c in rows if i in keep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".partial")
    with tarfile.open(tmp, "w:gz") as out:
        _add_bytes(out, "tiny40/labels.csv", labels.encode())
        _add_bytes(out, "tiny40/classes.csv", (source / "classes.csv").read_bytes())
        with tarfile.open(source / "trainval.tar.gz") as tar:
            for member in tar:
                if member.isfile() and Path(member.name).name in keep:
                    _add_bytes(out, f"tiny40/{member.name}", tar.extractfile(member).read())
        with tarfile.open(source / "test.tar.gz") as tar:
            taken = 0
            for member in tar:
                if member.isfile() and taken < args.test:
                    _add_bytes(out, f"tiny40/{member.name}", tar.extractfile(member).read())
                    taken += 1
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB: {len(keep)} labelled "
          f"images, {args.per_class} per class, {args.test} test images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
