"""ganpack.atomic: a file written under a partial name of its own beside its target, then renamed
into place. Two writers of one .npy at once (`ganpack sample -o same.npy` twice) each finish, and
the file is one of their arrays, whole; a failed write leaves no file; the mode is open()'s."""

import io
import os
import re
import stat
import threading

import numpy as np
import pytest

from at_once import run_at_once
from ganpack import atomic, npy
from ganpack.cli import main
from ganpack.errors import InputError, run_command


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


# ---------------------------------------------------------------------------------------------
# writable_file: what may be replaced, checked before any work (export-c, sample, interpolate)

def special_outputs(tmp_path):
    """name -> a path that is not a regular file: a FIFO, symbolic links, and a device node where
    mknod works (root)."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "real.gpkc").write_bytes(b"mine")
    (tmp_path / "link").symlink_to(tmp_path / "real.gpkc")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    outputs = {"fifo": (tmp_path / "fifo", "exists and is not a regular file"),
               "link": (tmp_path / "link", "is a symbolic link"),
               "dangling": (tmp_path / "dangling", "is a symbolic link")}
    try:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # as /dev/null
        outputs["device"] = (tmp_path / "null", "exists and is not a regular file")
    except (PermissionError, OSError):
        pass  # not root: the FIFO stands for it
    return outputs


@pytest.mark.parametrize("kind", ["fifo", "link", "dangling", "device"])
def test_an_output_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    outputs = special_outputs(tmp_path)
    if kind not in outputs:
        pytest.skip("mknod needs root")
    path, message = outputs[kind]
    before = os.lstat(path)
    with pytest.raises(InputError, match=f"'{re.escape(str(path))}' {message}"):
        atomic.writable_file(path, "model.gpkc")
    assert os.lstat(path) == before and (tmp_path / "real.gpkc").read_bytes() == b"mine"


@pytest.mark.parametrize("kind", ["fifo", "link", "device"])
def test_export_c_leaves_a_fifo_a_link_or_a_device_alone(tmp_path, capsys, kind):
    """Before any work: the model is not even loaded, and the command says so in one line, status 2."""
    outputs = special_outputs(tmp_path)
    if kind not in outputs:
        pytest.skip("mknod needs root")
    path, message = outputs[kind]
    before = os.lstat(path)
    with pytest.raises(SystemExit) as exit_:
        run_command(main, ["export-c", "no-such-model", str(path)])  # the output is checked first
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert os.lstat(path) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(atomic.PARTIAL_SUFFIX)) == []


def test_an_empty_output_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="output is an empty name"):
        atomic.writable_file("", "model.gpkc")
    with pytest.raises(InputError, match="output is an empty name"):
        main(["export-c", "default", ""])
    assert list(tmp_path.iterdir()) == []


def test_a_regular_file_may_be_replaced(tmp_path):
    (tmp_path / "old.gpkc").write_bytes(b"old")
    assert atomic.writable_file(tmp_path / "old.gpkc", "model.gpkc") == tmp_path / "old.gpkc"
