"""Runs in read-only folders: continue a copy, write outputs beside it.

On Kaggle the next session sees the last one's output as a read-only input folder
(/kaggle/input/<notebook>/runs/RUN). `lowres train --resume RUN --run-dir NEW` copies the
run to the writable NEW and continues it there as the same run: the same metrics.csv and
events.jsonl go on (an event notes where it came from), so its curves stay one curve and
the resume is as exact as a resume in place. Readers (predict, evaluate, export, runs,
compare) never need to write into a run: what they would write there goes to the working
directory instead, with a note.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from lowres.errors import LowresError
from lowres.run import lock as run_lock


def writable(folder: Path) -> bool:
    """Whether this process may create files in `folder` (a read-only mount says no even to
    root, through EROFS)."""
    return os.access(folder, os.W_OK)


def require_writable_run(run_dir: Path) -> None:
    if run_dir.is_dir() and not writable(run_dir):
        raise LowresError(f"{run_dir} is read-only (an input folder?): continue it in a writable "
                          f"folder with `lowres train --resume {run_dir} --run-dir NEW_DIR` "
                          f"(a copy that goes on as the same run)")


# Outputs of other commands inside a run (evaluate, export): large at times, remade on demand,
# and no part of what training continues from.
OTHER_OUTPUTS = ("evaluation", "export")


def _skipper(source: Path):
    top = os.path.normpath(source)

    def skipped(folder: str, names: list[str]) -> set[str]:
        # The lock belongs to the old place; temp files are writes a kill cut short.
        skip = {n for n in names if n == run_lock.NAME or (n.startswith(".") and ".tmp" in n)}
        if os.path.normpath(folder) == top:
            skip |= set(OTHER_OUTPUTS) & set(names)
        return skip
    return skipped


def copy_run(source: Path, target: Path) -> None:
    """Copy a run directory to `target` (which must not hold anything yet), whole or not at
    all: into a temporary sibling first, renamed when complete."""
    if not (source / "config.yaml").is_file():
        raise LowresError(f"{source} is not a lowres run directory (no config.yaml); pass the "
                          f"directory `lowres train` created")
    if run_lock.held_by_other(source):  # a copy of a run mid-write could mix two epochs
        raise LowresError(f"{source} is being trained by another process: copy it once that "
                          f"process has stopped")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise LowresError(f"--run-dir {target} already exists and is not empty: choose a new "
                          f"folder for the continued run")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not writable(target.parent):
        raise LowresError(f"--run-dir {target}: {target.parent} is not writable; choose a folder "
                          f"in a writable place (on Kaggle, under /kaggle/working)")
    partial = target.with_name(f".{target.name}.tmp-copy{os.getpid()}")
    _clear_killed_copies(target)
    try:
        # Contents only: the copy is ours to write whatever modes the original had.
        shutil.copytree(source, partial, ignore=_skipper(source), copy_function=shutil.copyfile)
        for folder in [partial, *(d for d in partial.rglob("*") if d.is_dir())]:
            folder.chmod(folder.stat().st_mode | 0o700)  # copytree gave folders the source's modes
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.replace(partial, target)
    except OSError as exc:  # a full disk, mostly: one line, and no half copy
        shutil.rmtree(partial, ignore_errors=True)
        raise LowresError(f"copying {source} to --run-dir {target} failed ({exc}): free space "
                          f"or choose another folder") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _clear_killed_copies(target: Path) -> None:
    """Copies into `target` that a killed session left (hidden, so `lowres runs` never shows
    them, but checkpoint-sized): their process is gone. A live process's copy is left alone."""
    for leftover in target.parent.glob(f".{target.name}.tmp-copy*"):
        pid = leftover.name.rsplit(".tmp-copy", 1)[1]
        if pid == str(os.getpid()) or not run_lock.pid_alive(pid):
            shutil.rmtree(leftover, ignore_errors=True)


def remove_copy(target: Path) -> None:
    """Undo `copy_run` when the resume is refused before training: the copy holds nothing
    the source does not."""
    shutil.rmtree(target, ignore_errors=True)


def output_path(run_dir: Path, default: Path) -> tuple[Path, str | None]:
    """Where a reader writes what belongs inside a run (`default`: RUN/evaluation,
    RUN/export/model.onnx), unless the run is read-only: then beside the working directory's
    `<run name>-evaluation`, `<run name>-export/model.onnx`, with a note saying so."""
    if writable(run_dir):
        return default, None
    first, *rest = default.relative_to(run_dir).parts
    here = Path.cwd() / f"{run_dir.name}-{first}" / Path(*rest)
    return here, f"{run_dir} is read-only: writing to {Path.cwd() / f'{run_dir.name}-{first}'} instead"
