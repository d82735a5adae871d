"""Write a uint8 array to a .npy file a chunk at a time: the bytes np.save writes for the whole
array, in the memory of one chunk, so `ganpack sample -n 1000000000 -o big.npy` needs disk
space, not RAM. The file is written under a hidden name of its own beside the target and renamed
into place at the end (ganpack/atomic.py), so an interrupted or failed run leaves no half-written
array behind, and two runs writing the same file leave one of their arrays, whole.
"""

import io
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ganpack.atomic import replacing
from ganpack.errors import InputError

UINT8 = np.dtype(np.uint8)


def header(shape: tuple[int, ...]) -> bytes:
    """The header np.save writes for a C-ordered uint8 array of `shape` (format version 1.0)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(UINT8),
                                                  "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def file_size(shape: tuple[int, ...]) -> int:
    return len(header(shape)) + int(np.prod(shape, dtype=object))


def check_space(path: os.PathLike[str], shape: tuple[int, ...], what: str) -> None:
    """Refuse, before any work, an array the folder cannot hold (a file it replaces counts as free)."""
    path = Path(path)
    size = file_size(shape)
    free = shutil.disk_usage(path.parent).free + (path.stat().st_size if path.is_file() else 0)
    if size > free:
        raise InputError(f"{what}: '{path}' would take {_bytes(size)}; '{path.parent}' has {_bytes(free)} free")


def write_npy(path: os.PathLike[str], shape: tuple[int, ...], chunks: Iterable[np.ndarray]) -> None:
    """Write the uint8 rows of `chunks` (their lengths adding up to shape[0]) as one .npy array."""
    path = Path(path)
    progress = Progress(shape[0], path)
    try:
        with replacing(path) as file:  # a partial name of its own: two writers of one path race safely
            file.write(header(shape))
            written = 0
            for chunk in chunks:
                rows = np.ascontiguousarray(chunk, UINT8)
                assert rows.shape[1:] == tuple(shape[1:]), (rows.shape, shape)
                file.write(rows.data)
                written += len(rows)
                progress.advance(written)
            assert written == shape[0], (written, shape)
    except OSError as error:  # a full disk, no permission; replacing() has removed the partial file
        raise InputError(f"cannot write '{path}': {error.strerror or error}") from None
    finally:
        progress.clear()


class Progress:
    """'writing 123,456 / 1,000,000 rows to big.npy (12%), 40 s left' on stderr, redrawn in
    place: only on a terminal, and only once a run has taken more than a second."""

    def __init__(self, total: int, path: Path):
        self.total, self.path, self.shown = total, path, False
        self.start = self.last = time.monotonic()
        self.enabled = sys.stderr.isatty()

    def advance(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.start < 1.0 or now - self.last < 0.25:
            return
        self.last, self.shown = now, True
        left = (self.total - done) * (now - self.start) / done
        sys.stderr.write(f"\rwriting {done:,} / {self.total:,} rows to {self.path} "
                         f"({100 * done / self.total:.0f}%), {left:.0f} s left ")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")  # back to the start of the line, and erase it
            self.shown = False


def _bytes(size: int) -> str:
    shown, unit = float(size), "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if shown < 1024 or unit == "TiB":
            break
        shown /= 1024
    return f"{size:,} bytes" if unit == "bytes" else f"{size:,} bytes ({shown:,.1f} {unit})"
