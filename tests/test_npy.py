"""ganpack.npy: a .npy written a chunk at a time is np.save's file, byte for byte; a failed or
interrupted write leaves nothing behind; the progress line shows only on a terminal."""

import io
import sys

import numpy as np
import pytest

from ganpack import npy
from ganpack.errors import InputError


def saved(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(0, 28, 28), (1, 28, 28), (7, 28, 28), (3, 784), (10 ** 12, 28, 28)])
def test_header_is_np_save_s(shape):
    if shape[0] < 100:
        assert npy.header(shape) == saved(np.zeros(shape, np.uint8))[:len(npy.header(shape))]
    assert len(npy.header(shape)) % 64 == 0  # the data starts aligned, as np.save aligns it
    assert npy.file_size(shape) == len(npy.header(shape)) + int(np.prod(shape, dtype=object))


def test_chunks_make_the_file_np_save_makes(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    npy.write_npy(tmp_path / "d.npy", images.shape, [images[:3], images[3:9], images[9:]])
    assert (tmp_path / "d.npy").read_bytes() == saved(images)
    assert [p.name for p in tmp_path.iterdir()] == ["d.npy"]


@pytest.mark.parametrize("error, raised", [(OSError(28, "No space left on device"), InputError),
                                           (KeyboardInterrupt(), KeyboardInterrupt)])
def test_a_failed_or_interrupted_write_leaves_no_file(tmp_path, error, raised):
    def chunks():
        yield np.zeros((2, 28, 28), np.uint8)
        raise error

    with pytest.raises(raised) as caught:
        npy.write_npy(tmp_path / "d.npy", (4, 28, 28), chunks())
    if raised is InputError:
        assert str(caught.value) == f"cannot write '{tmp_path / 'd.npy'}': No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_space_is_checked_up_front(tmp_path):
    npy.check_space(tmp_path / "small.npy", (10, 28, 28), "-n 10")
    with pytest.raises(InputError, match=r"^-n 10000000000000: '.*big.npy' would take 7,840,000,000,000,128 "
                                         r"bytes \(7,130.4 TiB\); '.*' has [\d,]+ bytes .* free$"):
        npy.check_space(tmp_path / "big.npy", (10 ** 13, 28, 28), "-n 10000000000000")


def test_progress_only_on_a_terminal(monkeypatch, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    clock = iter(range(0, 100, 1))  # one second a call
    monkeypatch.setattr(npy.time, "monotonic", lambda: float(next(clock)))
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        npy.write_npy(tmp_path / "d.npy", (6, 28, 28), [np.zeros((2, 28, 28), np.uint8)] * 3)
        text = stream.getvalue()
        assert ("\rwriting 2 / 6 rows to" in text and text.endswith("\r\033[K")) == shown
        assert text == "" or shown
