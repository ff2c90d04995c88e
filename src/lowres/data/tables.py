"""Datasets kept as tables: a Hugging Face dataset saved with `save_to_disk`, or parquet files.

Read with pyarrow (the `hf` extra: pip install 'lowres[hf]'), from local files only:

* `save_to_disk` output: `dataset_dict.json` + one folder per split (`train/`, `test/`, ...)
  holding Arrow files, `state.json` and `dataset_info.json`; or a single split's folder.
* parquet as the Hub writes it: `data/train-00000-of-00001.parquet`, `data/test-*.parquet`
  (the split is the file name up to its first '-'), or `train.parquet` / `test.parquet`.

The image column holds the `datasets.Image` encoding (a struct of `bytes` and `path`; bytes
may be missing when the path names a local file), the label column integers (names from
the dataset's `ClassLabel` feature, kept in the Arrow/parquet metadata) or strings. Both
columns are detected (the Image feature / a ClassLabel, else the usual names) or named by
`data.image_column` / `data.label_column`. Only the labels are read when listing; the
image bytes are read when the uint8 cache is built (`TableImages`).

Splits: `train` is the labelled set, `validation`/`valid`/`val` the validation set, and
`test` the test set: labelled (every row has a label >= 0) it is what `evaluate` uses,
unlabelled (no label column, or labels of -1) it is the submission set.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lowres.errors import DataError, LowresError

IMAGE_NAMES = ("image", "img", "images", "picture", "photo")
LABEL_NAMES = ("label", "labels", "fine_label", "class", "category", "Category", "target")
ID_NAMES = ("id", "Id", "ID", "image_id")
SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise LowresError("Hugging Face datasets and parquet files need pyarrow: "
                          "pip install 'lowres[hf]'") from None
    return pyarrow


def is_table_dataset(root: Path) -> bool:
    return ((root / "dataset_dict.json").is_file() or (root / "state.json").is_file()
            or bool(_parquet_files(root)))


@dataclass
class TableImages:
    """The image column of one split's table files; decoded once by `data.cache`."""

    files: list[Path]
    kind: str  # "arrow" | "parquet"
    column: str

    def cache_key(self, size: int | None) -> str:
        digest = hashlib.sha256(f"lowres-table-v1\n{self.kind}\n{self.column}\nsize={size}\n".encode())
        for path in self.files:
            st = path.stat()
            digest.update(f"{path.resolve()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:24]

    def encoded_images(self) -> list[bytes]:
        """The encoded bytes of every row (read from its `path` where bytes are absent)."""
        column = _read(self.files, self.kind, [self.column]).column(self.column).to_pylist()
        out = []
        for row, cell in enumerate(column):
            if isinstance(cell, dict):
                data, path = cell.get("bytes"), cell.get("path")
            else:
                data, path = (cell, None) if isinstance(cell, bytes) else (None, cell)
            if data is None and path and Path(path).is_file():
                data = Path(path).read_bytes()
            if data is None:
                raise DataError(f"{self.files[0]}: row {row} of column '{self.column}' holds no "
                                f"image bytes and no readable file path (re-save the dataset "
                                f"with embedded images)")
            out.append(data)
        return out


@dataclass
class TableSplit:
    """One split as read for listing: its labels, Ids and images."""

    name: str  # "train" | "val" | "test"
    images: TableImages
    labels: list | None  # raw values (ints or strings) or None without a label column
    class_names: list[str] | None  # from a ClassLabel feature
    ids: list[str]


def read_table_splits(root: Path, image_column: str | None = None,
                      label_column: str | None = None) -> dict[str, TableSplit]:
    """Every split of the dataset at `root`, keyed by "train" / "val" / "test"."""
    _pyarrow()
    groups = _split_files(root)
    if "train" not in groups:
        found = ", ".join(sorted(groups)) or "none"
        raise DataError(f"{root}: no train split (found splits: {found}); name the files "
                        f"train-*.parquet / train.parquet or save a DatasetDict with a 'train' split")
    out = {}
    for split, (kind, files, features) in groups.items():
        schema = _schema(files[0], kind)
        image_col = _image_column(files[0], schema, features, image_column)
        label_col = _label_column(files[0], schema, features, label_column, required=split == "train")
        table = _read(files, kind, [c for c in (label_col, *ID_NAMES) if c and c in schema.names])
        labels = table.column(label_col).to_pylist() if label_col else None
        names = features.get(label_col, {}).get("names") if label_col else None
        id_col = next((c for c in ID_NAMES if c in schema.names), None)
        ids = [str(v) for v in table.column(id_col).to_pylist()] if id_col else None
        if ids is None or len(set(ids)) != len(ids):  # only test Ids are ever written out
            ids = (_ids_from_paths(files, kind, image_col, table.num_rows) if split == "test"
                   else _row_numbers(table.num_rows))
        out[split] = TableSplit(split, TableImages(files, kind, image_col), labels, names, ids)
    return out


# --------------------------------------------------------------------------- files


def _parquet_files(root: Path) -> list[Path]:
    return sorted(root.glob("*.parquet")) + sorted((root / "data").glob("*.parquet"))


def _split_files(root: Path) -> dict[str, tuple[str, list[Path], dict]]:
    """split -> (kind, files, features JSON) for save_to_disk folders or parquet files."""
    groups: dict[str, tuple[str, list[Path], dict]] = {}
    if (root / "dataset_dict.json").is_file():
        splits = json.loads((root / "dataset_dict.json").read_text()).get("splits", [])
        for name in splits:
            if SPLITS.get(name) and SPLITS[name] not in groups:
                groups[SPLITS[name]] = _arrow_split(root / name)
    elif (root / "state.json").is_file():  # a single Dataset: its rows are the labelled set
        groups["train"] = _arrow_split(root)
    else:
        by_split: dict[str, list[Path]] = {}
        for path in _parquet_files(root):
            split = SPLITS.get(path.stem.split("-")[0])
            if split:
                by_split.setdefault(split, []).append(path)
        for split, files in by_split.items():
            groups[split] = ("parquet", files, _parquet_features(files[0]))
    return groups


def _arrow_split(folder: Path) -> tuple[str, list[Path], dict]:
    try:
        state = json.loads((folder / "state.json").read_text())
        info = json.loads((folder / "dataset_info.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder}: not a readable save_to_disk folder ({exc}); save it again "
                        f"with Dataset.save_to_disk") from None
    files = [folder / f["filename"] for f in state.get("_data_files", [])]
    missing = [f for f in files if not f.is_file()]
    if not files or missing:
        raise DataError(f"{folder}: Arrow file {missing[0] if missing else '(none listed)'} is "
                        f"missing; save the dataset again with save_to_disk")
    return "arrow", files, info.get("features") or {}


def _parquet_features(path: Path) -> dict:
    """The `datasets` features stored in a parquet file's metadata ({} when absent)."""
    pa = _pyarrow()
    meta = pa.parquet.read_schema(path).metadata or {}
    try:
        return json.loads(meta[b"huggingface"]).get("info", {}).get("features", {}) or {}
    except (KeyError, ValueError):
        return {}


def _schema(path: Path, kind: str):
    pa = _pyarrow()
    try:
        if kind == "parquet":
            return pa.parquet.read_schema(path)
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_stream(source).schema
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read as {kind} ({exc}); replace the file") from None


def _read(files: list[Path], kind: str, columns: list[str]):
    pa = _pyarrow()
    tables = []
    try:
        for path in files:
            if kind == "parquet":
                tables.append(pa.parquet.read_table(path, columns=columns))
            else:
                with pa.memory_map(str(path)) as source:
                    tables.append(pa.ipc.open_stream(source).read_all().select(columns))
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read as {kind} ({exc}); replace the file") from None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


# --------------------------------------------------------------------------- columns


def _image_column(where: Path, schema, features: dict, asked: str | None) -> str:
    if asked:
        if asked not in schema.names:
            raise DataError(f"{where}: data.image_column={asked} is not a column (columns: "
                            f"{', '.join(schema.names)})")
        return asked
    typed = [n for n, f in features.items() if isinstance(f, dict) and f.get("_type") == "Image"]
    named = [n for n in IMAGE_NAMES if n in schema.names]
    if typed or named:
        return (typed or named)[0]
    raise DataError(f"{where}: no image column found (columns: {', '.join(schema.names)}); "
                    f"set data.image_column=NAME")


def _label_column(where: Path, schema, features: dict, asked: str | None, required: bool) -> str | None:
    if asked:
        if asked in schema.names:
            return asked
        if required:
            raise DataError(f"{where}: data.label_column={asked} is not a column (columns: "
                            f"{', '.join(schema.names)})")
        return None  # e.g. an unlabelled test split
    typed = [n for n, f in features.items() if isinstance(f, dict) and f.get("_type") == "ClassLabel"]
    named = [n for n in LABEL_NAMES if n in schema.names]
    if typed or named:
        return (typed or named)[0]
    if required:
        raise DataError(f"{where}: no label column found (columns: {', '.join(schema.names)}); "
                        f"set data.label_column=NAME")
    return None


def _ids_from_paths(files: list[Path], kind: str, image_col: str, rows: int) -> list[str]:
    """Test Ids: the images' file names when stored and unique, else the row numbers."""
    cells = _read(files, kind, [image_col]).column(image_col)
    paths = []
    if str(cells.type).startswith("struct") and "path" in [f.name for f in cells.type]:
        paths = [Path(p).name if p else "" for p in cells.combine_chunks().field("path").to_pylist()]
    if paths and all(paths) and len(set(paths)) == len(paths):
        return paths
    return _row_numbers(rows)


def _row_numbers(rows: int) -> list[str]:
    width = max(5, len(str(rows)))
    return [str(i).zfill(width) for i in range(rows)]
