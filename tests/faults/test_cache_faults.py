"""Promise 7: a decoded-cache file that a kill left half written, or that was damaged
later, is found (size, header, CRC-32 recorded beside it) and decoded again, with one line;
two processes building the same new cache at once both end with a whole, verified file."""
import subprocess
import sys

import numpy as np
import pytest

from run_configs import error_lines
from lowres.data import cache_integrity
from lowres.data.cache import cached_images, file_list_key
from lowres.data.read import read_dataset
from lowres.data.synthetic import make_competition_dataset


def _truncate(npy):
    data = npy.read_bytes()
    npy.write_bytes(data[: len(data) // 2])


def _zero_fill_the_pixels(npy):  # same size, same header: only the checksum can tell
    data = bytearray(npy.read_bytes())
    data[256:] = bytes(len(data) - 256)
    npy.write_bytes(bytes(data))


def _flip_a_pixel(npy):
    data = bytearray(npy.read_bytes())
    data[-7] ^= 0x01
    npy.write_bytes(bytes(data))


def _zero_filled_file(npy):  # what a crash of some file systems leaves after a rename
    npy.write_bytes(bytes(npy.stat().st_size))


def _record_of_another_file(npy):
    record = npy.with_suffix(".json")
    record.write_text(record.read_text().replace('"crc32": ', '"crc32": 1'))


def _record_missing(npy):  # killed between the array's rename and its record's
    npy.with_suffix(".json").unlink()


DAMAGE = {"truncated": _truncate, "pixels zero-filled": _zero_fill_the_pixels,
          "one pixel flipped": _flip_a_pixel, "zero-filled file": _zero_filled_file,
          "record of another file": _record_of_another_file, "record missing": _record_missing}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_cache_is_detected_and_rebuilt(tiny_data, tmp_path, capsys, how):
    paths = read_dataset(tiny_data).labelled.paths
    good = np.array(cached_images(paths, tmp_path))
    npy = tmp_path / f"{file_list_key(paths)}.npy"
    DAMAGE[how](npy)
    capsys.readouterr()
    again = cached_images(paths, tmp_path)
    err = error_lines(capsys)
    assert len(err) == 1 and "is not usable" in err[0] and "decoding again" in err[0], err
    assert np.array_equal(good, again)
    assert cache_integrity.load(npy, len(paths))[0] is not None  # rebuilt whole


def test_a_half_written_cache_of_a_killed_process_is_never_used(tiny_data, tmp_path, capsys):
    paths = read_dataset(tiny_data).labelled.paths
    npy = tmp_path / f"{file_list_key(paths)}.npy"
    (tmp_path / f".{npy.name}.tmp4242-1").write_bytes(b"\x93NUMPY half")  # what a kill leaves
    arr = cached_images(paths, tmp_path)
    assert arr.shape[0] == len(paths) and cache_integrity.load(npy, len(paths))[0] is not None


BUILD = ("import sys; import numpy as np; from lowres.data.cache import cached_images; "
         "from lowres.data.read import read_dataset; "
         "a = cached_images(read_dataset(sys.argv[1]).labelled.paths, sys.argv[2]); "
         "print(int(np.asarray(a, dtype=np.int64).sum()))")


def test_two_processes_building_one_new_cache_at_once(tmp_path):
    data = make_competition_dataset(tmp_path / "data", classes=3, per_class=60, size=24)
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(data), str(cache)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    paths = read_dataset(data).labelled.paths
    arr, problem = cache_integrity.load(cache / f"{file_list_key(paths)}.npy", len(paths))
    assert problem is None and arr is not None
    assert {o[0].strip() for o in outs} == {str(int(np.asarray(arr, dtype=np.int64).sum()))}
    assert not list(cache.glob(".*tmp*"))
