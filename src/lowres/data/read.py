"""Find a dataset on disk and list it: (path, label) pairs, class names, test files.

Three layouts, detected automatically:
- competition: `labels.csv` (Id,Category) + `trainval/` (+ optional `test/`, `classes.csv`);
  Category is a non-negative integer, written back as the same integer in submissions.
- class folders: `train/<class>/*` (+ optional `val/<class>/*`, and `test/` either flat and
  unlabelled, the submission set, or `test/<class>/*`, a labelled test split for evaluate);
  class index = position of the folder name in sorted order.
- tables: a Hugging Face dataset saved with `save_to_disk`, or parquet files (`tables.py`);
  its splits' images live in the table (`Split.table`), not in files.

Every problem with the listing is reported here, up front, as one `DataError` line naming
the file or row and the fix. Problems inside image files are found by `data.cache`.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from lowres.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Split:
    """A list of image files with labels (-1 where unknown, as for test images).

    For a table layout `paths` are names for messages (`<root>/train[17]`), `table` holds
    the images and `ids` the test Ids."""

    paths: list[Path]
    labels: list[int]
    table: object | None = None  # tables.TableImages
    ids: list[str] | None = None

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class DatasetIndex:
    root: Path
    layout: str  # "competition" | "folders" | "table"
    class_names: list[str]  # how the dataset spells each class, index = class id
    labelled: Split  # trainval (competition) or train/ (folders)
    test: Split = field(default_factory=lambda: Split([], []))
    val: Split | None = None  # folders layout: an explicit val/ directory
    test_labelled: bool = False  # test/<class>/ folders or a labelled test table: for evaluate

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(directory: Path) -> list[Path]:
    """Image files directly in `directory`, sorted by name (the submission order)."""
    return sorted((p for p in directory.iterdir() if is_image(p)), key=lambda p: p.name)


def read_dataset(root: str | Path, image_column: str | None = None,
                 label_column: str | None = None) -> DatasetIndex:
    """The dataset at `root`; the column names only matter for tables (None: detect)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset not found: {root} (pass the directory that holds labels.csv "
                        f"and trainval/, or train/<class>/ folders)")
    if not root.is_dir():
        raise DataError(f"dataset path is not a directory: {root}")
    if (root / "labels.csv").exists() or (root / "trainval").is_dir():
        return _read_competition(root)
    if (root / "train").is_dir() and not (root / "dataset_dict.json").is_file():
        return _read_folders(root)
    from lowres.data.tables import is_table_dataset

    if is_table_dataset(root):
        return _read_tables(root, image_column, label_column)
    raise DataError(f"{root}: no dataset layout found: expected labels.csv + trainval/ "
                    f"(competition layout), train/<class>/ folders, a Hugging Face dataset "
                    f"saved with save_to_disk, or train/test parquet files")


def read_labelled_folder(path: str | Path, class_names: list[str], image_column: str | None = None,
                         label_column: str | None = None) -> Split:
    """Labelled data for `evaluate --data`: a dataset root (its labelled test split when it
    has one, else its labelled images), or `<class>/` sub-folders, labelled with a trained
    run's class names."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"labelled data not found: {path} (pass a dataset directory or a "
                        f"folder of <class>/ sub-folders)")
    from lowres.data.tables import is_table_dataset

    if (path / "labels.csv").exists() or (path / "train").is_dir() or is_table_dataset(path):
        index = read_dataset(path, image_column, label_column)
        split = index.test if index.test_labelled else index.labelled
        labels = [class_names.index(index.class_names[y]) if index.class_names[y] in class_names
                  else _unknown_class(path, index.class_names[y], class_names)
                  for y in split.labels]
        return Split(split.paths, labels, split.table, split.ids)
    split, names = _read_class_dirs(path)
    lookup = {name: i for i, name in enumerate(class_names)}
    labels = [lookup[names[y]] if names[y] in lookup else _unknown_class(path, names[y], class_names)
              for y in split.labels]
    return Split(split.paths, labels)


def _unknown_class(where: Path, name: str, class_names: list[str]) -> int:
    raise DataError(f"{where}: class '{name}' is not one of the {len(class_names)} classes the "
                    f"run was trained on (rename the folder or use the run's data)")


# --------------------------------------------------------------------------- competition


def _read_competition(root: Path) -> DatasetIndex:
    labels_csv = root / "labels.csv"
    image_dir = root / "trainval"
    if not labels_csv.exists():
        raise DataError(f"{labels_csv} is missing: the competition layout needs a labels.csv "
                        f"with columns Id,Category next to trainval/")
    if not image_dir.is_dir():
        raise DataError(f"{image_dir} is missing: put the labelled images listed in labels.csv there")
    rows = _read_labels_csv(labels_csv)
    if not rows:
        raise DataError(f"{labels_csv} lists no images: add one row Id,Category per image")
    categories = sorted({c for _, c, _ in rows})
    listed_classes = _read_classes_csv(root / "classes.csv")
    if listed_classes is not None:
        empty = [c for c in listed_classes if c not in set(categories)]
        if empty:
            raise DataError(f"class {empty[0]} of {root / 'classes.csv'} has no images in "
                            f"{labels_csv} (remove it from classes.csv or add its images)")
        categories = sorted(set(categories) | set(listed_classes))
    index_of = {c: i for i, c in enumerate(categories)}
    paths, labels = [], []
    for file_id, category, line in rows:
        path = image_dir / file_id
        if not path.is_file():
            raise DataError(f"{labels_csv} line {line}: image '{file_id}' is missing from "
                            f"{image_dir}/ (add the file or remove the row)")
        paths.append(path)
        labels.append(index_of[category])
    test_dir = root / "test"
    test = Split(list_images(test_dir), []) if test_dir.is_dir() else Split([], [])
    test.labels = [-1] * len(test.paths)
    return DatasetIndex(root, "competition", [str(c) for c in categories], Split(paths, labels), test)


def _read_labels_csv(path: Path) -> list[tuple[str, int, int]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read as text: {exc}") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path} is empty: it needs a header line Id,Category and one row per image")
    header = [h.strip() for h in header]
    missing = [c for c in ("Id", "Category") if c not in header]
    if missing:
        raise DataError(f"{path}: column {missing[0]} is missing (header is {','.join(header)}; "
                        f"expected Id,Category)")
    id_col, cat_col = header.index("Id"), header.index("Category")
    rows, seen = [], {}
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(id_col, cat_col):
            raise DataError(f"{path} line {line}: expected {len(header)} columns, got {len(row)}")
        file_id, raw = row[id_col].strip(), row[cat_col].strip()
        if not file_id:
            raise DataError(f"{path} line {line}: empty Id")
        try:
            category = int(raw)
        except ValueError:
            raise DataError(f"{path} line {line}: Category '{raw}' of '{file_id}' is not an "
                            f"integer (labels must be class numbers 0, 1, ...)") from None
        if category < 0:
            raise DataError(f"{path} line {line}: Category {category} of '{file_id}' is negative "
                            f"(labels must be 0 or more)")
        if file_id in seen:
            raise DataError(f"{path} line {line}: duplicate Id '{file_id}' (first on line "
                            f"{seen[file_id]}); keep one row per image")
        seen[file_id] = line
        rows.append((file_id, category, line))
    return rows


def _read_classes_csv(path: Path) -> list[int] | None:
    """Optional classes.csv (Category,...): lets us detect classes with no images."""
    if not path.exists():
        return None
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "Category" not in reader.fieldnames:
            return None
        out = []
        for line, row in enumerate(reader, start=2):
            try:
                out.append(int(row["Category"]))
            except (TypeError, ValueError):
                raise DataError(f"{path} line {line}: Category '{row['Category']}' is not an "
                                f"integer") from None
        return out


# --------------------------------------------------------------------------- class folders


def _read_folders(root: Path) -> DatasetIndex:
    labelled, class_names = _read_class_dirs(root / "train")
    val = _in_train_classes(root / "val", class_names) if (root / "val").is_dir() else None
    test_dir = root / "test"
    test = Split([], [])
    labelled_test = False
    if test_dir.is_dir():
        files = list_images(test_dir)
        test = Split(files, [-1] * len(files))
        if not files and any(p.is_dir() and not p.name.startswith(".") for p in test_dir.iterdir()):
            test = _in_train_classes(root / "test", class_names)  # test/<class>/: labelled
            labelled_test = True
    return DatasetIndex(root, "folders", class_names, labelled, test, val, labelled_test)


def _in_train_classes(directory: Path, class_names: list[str]) -> Split:
    split, names = _read_class_dirs(directory, allow_empty_class=True)
    lookup = {name: i for i, name in enumerate(class_names)}
    unknown = [n for n in names if n not in lookup]
    if unknown:
        raise DataError(f"{directory / unknown[0]}: class folder not in train/ "
                        f"({directory.name} classes must be train classes)")
    return Split(split.paths, [lookup[names[y]] for y in split.labels])


def _read_class_dirs(directory: Path, allow_empty_class: bool = False) -> tuple[Split, list[str]]:
    class_dirs = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{directory} has no class folders: put each class's images in "
                        f"{directory}/<class name>/")
    paths, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = list_images(class_dir)
        if not files and not allow_empty_class:
            raise DataError(f"class folder {class_dir} has no images (add images or remove the "
                            f"folder)")
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise DataError(f"{directory} holds no images (supported: "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    return Split(paths, labels), [p.name for p in class_dirs]


# --------------------------------------------------------------------------- tables


def _read_tables(root: Path, image_column: str | None, label_column: str | None) -> DatasetIndex:
    from lowres.data.tables import read_table_splits

    splits = read_table_splits(root, image_column, label_column)
    train = splits["train"]
    where = train.images.files[0]
    if train.class_names:  # a ClassLabel feature: its names, in its order
        class_names = list(train.class_names)
    else:
        values = {v for v in train.labels if v is not None}
        if any(isinstance(v, int) and v < 0 for v in values):
            raise DataError(f"{where}: negative labels in the train split (every training image "
                            f"needs a class)")
        class_names = [str(v) for v in sorted(values)]
    lookup = {name: i for i, name in enumerate(class_names)}
    by_index = train.class_names is not None

    def to_split(split, required: bool) -> tuple[Split, bool]:
        names = [root / f"{split.name}[{i}]" for i in range(len(split.ids))]
        labels = [-1] * len(names)
        labelled = split.labels is not None and all(v is not None and v != -1 for v in split.labels)
        if labelled:
            labels = [_table_label(v, i, split, class_names, lookup, by_index)
                      for i, v in enumerate(split.labels)]
        elif required and split.labels is None:
            raise DataError(f"{split.images.files[0]}: the {split.name} split has no label column "
                            f"(set data.label_column=NAME)")
        elif required:
            bad = next(i for i, v in enumerate(split.labels) if v is None or v == -1)
            raise DataError(f"{split.images.files[0]}: row {bad} of the {split.name} split has no label "
                            f"(every {split.name} image needs a class)")
        return Split(names, labels, split.images, split.ids), labelled

    labelled, _ = to_split(train, required=True)
    if not len(labelled):
        raise DataError(f"{where}: the train split has no rows")
    val = to_split(splits["val"], required=True)[0] if "val" in splits else None
    test, test_labelled = (to_split(splits["test"], required=False) if "test" in splits
                           else (Split([], []), False))
    return DatasetIndex(root, "table", class_names, labelled, test, val, test_labelled)


def _table_label(value, row: int, split, class_names: list[str], lookup: dict[str, int],
                 by_index: bool) -> int:
    """A class index: ClassLabel integers index the names; other values are looked up."""
    if by_index and isinstance(value, int):
        if 0 <= value < len(class_names):
            return value
    elif str(value) in lookup:
        return lookup[str(value)]
    raise DataError(f"{split.images.files[0]}: row {row} of the {split.name} split has label "
                    f"{value!r}, not one of the {len(class_names)} train classes")
