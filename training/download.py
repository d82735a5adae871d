"""Download a file from a list of mirrors, verified by MD5 and moved into place atomically.

Standard library only (tqdm is used for a progress bar when it is installed).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from training.errors import DataError

# Tried in order. torchvision lists yann.lecun.com and the PyTorch CI bucket; yann.lecun.com has
# answered 403 since 2024, so it goes last. The CVDF bucket (used by TensorFlow's examples) is a
# third copy of the same files; the MD5 check rejects any mirror whose copy differs.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

CHUNK_BYTES = 1 << 20  # read and hash 1 MiB at a time


class _MirrorFailure(Exception):
    """One mirror did not deliver a good copy; the message says why."""


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes, read in chunks so big files do not sit in memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    name: str,
    md5: str,
    dest_dir: str | os.PathLike,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    timeout: float = 30,
) -> Path:
    """Make sure `dest_dir/name` exists with the given MD5, fetching `mirror + name` if needed.

    Each mirror is tried in order; the first good copy wins. Raises DataError naming the file and
    every mirror's failure if none delivers. `timeout` (seconds) bounds each connect and each read.
    """
    dest_dir = Path(dest_dir)
    final_path = dest_dir / name
    if final_path.is_file():
        if file_digest(final_path) == md5:
            return final_path
        # A stale or damaged copy: drop it now so a failed download cannot leave it looking valid.
        final_path.unlink()
    dest_dir.mkdir(parents=True, exist_ok=True)

    failures = []
    for mirror in mirrors:
        url = mirror + name
        try:
            _fetch_verified(url, md5, final_path, timeout)
            return final_path
        except _MirrorFailure as failure:
            failures.append(f"{url}: {failure}")
    tried = "\n  ".join(failures) if failures else "(no mirrors given)"
    raise DataError(f"{final_path}: could not download {name} with MD5 {md5}; tried:\n  {tried}")


def _fetch_verified(url: str, md5: str, final_path: Path, timeout: float) -> None:
    """Stream `url` into a temporary file beside `final_path`, check its MD5, rename into place."""
    # Same folder as the final file, so os.replace is an atomic rename, never a copy.
    handle, temp_name = tempfile.mkstemp(
        dir=final_path.parent, prefix=f".{final_path.name}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, "wb") as temp_file:
            got_md5 = _stream_to(url, temp_file, timeout, final_path.name)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        if got_md5 != md5:
            raise _MirrorFailure(f"MD5 {got_md5} does not match the expected {md5}")
        os.replace(temp_name, final_path)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def _stream_to(url: str, out_file, timeout: float, label: str) -> str:
    """Copy the body at `url` into `out_file` and return its MD5; errors become _MirrorFailure."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            progress = _progress_bar(response.headers.get("Content-Length"), label)
            try:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    digest.update(chunk)
                    out_file.write(chunk)
                    if progress is not None:
                        progress.update(len(chunk))
            finally:
                if progress is not None:
                    progress.close()
    except urllib.error.HTTPError as error:
        raise _MirrorFailure(f"HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise _MirrorFailure(f"cannot connect ({error.reason})") from error
    except (OSError, http.client.HTTPException, ValueError) as error:
        # Timeouts, resets and short bodies (IncompleteRead) land here; ValueError is a bad URL.
        raise _MirrorFailure(f"{type(error).__name__}: {error}") from error
    return digest.hexdigest()


def _progress_bar(content_length: str | None, label: str):
    """A tqdm bar in bytes, or None without tqdm. disable=None hides it when stderr is not a TTY."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    total = int(content_length) if content_length and content_length.isdigit() else None
    return tqdm(total=total, unit="B", unit_scale=True, desc=label, disable=None, leave=False)
