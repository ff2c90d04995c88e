"""A really read-only directory for tests: a read-only bind mount (root ignores file modes,
so chmod proves nothing; a read-only mount refuses even root, as Kaggle's input folders do)."""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only_view(source: Path, mount_point: Path):
    """`mount_point` shows `source` read-only until the block ends."""
    mount_point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "--bind", str(source), str(mount_point)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"a read-only bind mount needs root and mount(8): {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount_point)], check=True,
                       capture_output=True)
        with pytest.raises(OSError, match="Read-only file system"):
            (mount_point / "probe").write_text("x")  # really read-only, for root too
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
