"""ganpack.atomic: a file written under a partial name of its own beside its target, then renamed
into place. Two writers of one .npy at once (`ganpack sample -o same.npy` twice) each finish, and
the file is one of their arrays, whole; a failed write leaves no file; the mode is open()'s."""

import io
import os
import threading

import numpy as np
import pytest

from at_once import run_at_once
from ganpack import atomic, npy


def test_the_file_appears_whole_with_open_s_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        with atomic.replacing(tmp_path / "a.bin") as file:
            file.write(b"whole")
            assert [path.name for path in tmp_path.iterdir()] != ["a.bin"]  # not there until the end
    finally:
        os.umask(previous)
    assert (tmp_path / "a.bin").read_bytes() == b"whole"
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, as open() makes it


def test_a_failed_write_leaves_the_old_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic.replacing(tmp_path / "a.bin") as file:
            file.write(b"half")
            raise KeyboardInterrupt
    assert [path.name for path in tmp_path.iterdir()] == ["a.bin"]
    assert (tmp_path / "a.bin").read_bytes() == b"old"


def test_two_writers_of_one_npy_leave_one_whole_array(tmp_path):
    """Each writer holds after its first chunk until the other has written its own: with one shared
    partial name, they wrote into one file and the second rename found nothing to rename."""
    started = threading.Barrier(2, timeout=30)
    arrays = [np.full((6, 28, 28), value, np.uint8) for value in (1, 2)]

    def chunks(array):
        yield array[:3]
        started.wait()
        yield array[3:]

    def writer(array):
        return lambda: npy.write_npy(tmp_path / "d.npy", array.shape, chunks(array))

    assert run_at_once(*[writer(array) for array in arrays]) == []
    assert [path.name for path in tmp_path.iterdir()] == ["d.npy"]
    written = np.load(io.BytesIO((tmp_path / "d.npy").read_bytes()))
    assert any(np.array_equal(written, array) for array in arrays)
