"""MNIST as uint8 arrays: an IDX reader, the bundled 5,000-digit subset, and full MNIST.

`load_idx_set` reads any data set published as MNIST is (four gzipped IDX files with known MD5s,
downloaded from mirrors or found in a folder); training/datasets.py uses it for Fashion-MNIST and
KMNIST. Importing this module does nothing; torch is imported only by `to_training_tensor`.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ganpack.contract import IMAGE_SIDE, PIXEL_SCALE
from training.download import DEFAULT_MIRRORS, download_file, file_digest
from training.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

# ---------------------------------------------------------------------------- constants

IDX_UINT8 = 0x08  # the only IDX element type we read; MNIST uses nothing else
NUM_CLASSES = 10
GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20

# MD5 of the standard gzipped files, as torchvision's MNIST dataset lists them.
MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}

# The bundled subset, written by make_bundled_mnist.py; regenerate it and these change together.
BUNDLED_DIR = Path(__file__).resolve().parent / "assets"
BUNDLED_IMAGES = "mnist5k-images-idx3-ubyte.gz"
BUNDLED_LABELS = "mnist5k-labels-idx1-ubyte.gz"
BUNDLED_SHA256 = {
    BUNDLED_IMAGES: "c6b100a5a2c03680cfe2ea9a6cb50df61c85444712901c9827140677184ff468",
    BUNDLED_LABELS: "86843f81a1849db34cf2a8117f2c27d94bdb2638b0633e53343f198187730267",
}

# ---------------------------------------------------------------------------- IDX files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a uint8 IDX file, gzipped or not (told apart by the gzip magic, not the name).

    Returns a writable uint8 array shaped by the header's dims, e.g. (N, 28, 28) or (N,).
    Raises DataError naming `path` for a bad header, a corrupt gzip stream, or a data length
    that differs from prod(dims).
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw_file:
            is_gzipped = raw_file.read(2) == GZIP_MAGIC
        if is_gzipped:
            with gzip.open(path, "rb") as stream:
                return _parse_idx_stream(stream, path, available_bytes=None)
        with open(path, "rb") as stream:
            file_size = os.fstat(stream.fileno()).st_size
            return _parse_idx_stream(stream, path, available_bytes=file_size)
    except FileNotFoundError as error:
        raise DataError(f"{path}: file not found") from error
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: corrupt or truncated gzip stream ({error})") from error
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error})") from error


def _parse_idx_stream(stream, path: Path, available_bytes: int | None) -> np.ndarray:
    """Header, then exactly prod(dims) bytes. `available_bytes` is the file size when known."""
    header = stream.read(4)
    if len(header) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(header)} bytes)")
    zero_a, zero_b, dtype_code, num_dims = header
    if zero_a != 0 or zero_b != 0:
        raise DataError(f"{path}: not an IDX file (magic starts {header[:2].hex()}, want 0000)")
    if dtype_code != IDX_UINT8:
        raise DataError(f"{path}: IDX element type 0x{dtype_code:02x} unsupported (want 0x08)")
    if not 1 <= num_dims <= 3:
        raise DataError(f"{path}: IDX header declares {num_dims} dims (want 1 to 3)")
    dims_bytes = stream.read(4 * num_dims)
    if len(dims_bytes) < 4 * num_dims:
        raise DataError(f"{path}: IDX header truncated in the dimension sizes")
    dims = struct.unpack(f">{num_dims}I", dims_bytes)  # big-endian uint32 each
    expected = math.prod(dims)

    # Never size a buffer from the header: a file declaring 4e9 elements must not allocate 4 GB.
    if available_bytes is not None:
        data_bytes = available_bytes - 4 - 4 * num_dims
        if data_bytes != expected:
            raise DataError(_length_message(path, dims, expected, data_bytes))
    data = bytearray()
    while len(data) <= expected:  # one read past the end finds trailing bytes (and checks the CRC)
        chunk = stream.read(min(CHUNK_BYTES, expected + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) != expected:
        raise DataError(_length_message(path, dims, expected, len(data)))
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)  # bytearray-backed: writable


def _length_message(path: Path, dims: tuple, expected: int, found: int) -> str:
    if found < expected:
        return f"{path}: truncated: IDX dims {dims} need {expected} data bytes, found {found}"
    return f"{path}: trailing bytes: IDX dims {dims} need exactly {expected} data bytes"


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """An IDX file of images: uint8 (N, 28, 28), at least one."""
    images = read_idx(path)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or not len(images):
        raise DataError(f"{path}: images have shape {images.shape}, want (N, 28, 28) with N >= 1")
    return images


def load_images_and_labels(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,) in 0..9, checked against each other."""
    images = read_idx_images(images_path)
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: labels have shape {labels.shape}, want (N,)")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        first = bad[0]
        raise DataError(
            f"{labels_path}: {bad.size} labels outside 0-9; first is {labels[first]} at index {first}"
        )
    return images, labels


def _verify_checksum(path: Path, expected: str, algorithm: str) -> None:
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise DataError(f"{path}: {algorithm.upper()} is {actual}, expected {expected}")


# ---------------------------------------------------------------------------- data sets


def load_bundled() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000-digit subset shipped in training/assets (500 per class, sorted by label)."""
    images_path, labels_path = BUNDLED_DIR / BUNDLED_IMAGES, BUNDLED_DIR / BUNDLED_LABELS
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataError(f"{path}: bundled file missing (see training/make_bundled_mnist.py)")
        _verify_checksum(path, BUNDLED_SHA256[path.name], "sha256")
    return load_images_and_labels(images_path, labels_path)


def default_cache_dir(name: str = "mnist") -> Path:
    """$XDG_CACHE_HOME/ganpack/<name>, falling back to ~/.cache/ganpack/<name>."""
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root) / "ganpack" / name


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    split: str = "train",
) -> tuple[np.ndarray, np.ndarray]:
    """Full MNIST, (60000, 28, 28) for "train" or (10000, 28, 28) for "test", with labels.

    With `data_dir`, read the files from there (a torchvision MNIST/raw folder works as it is);
    otherwise download missing files into `cache_dir` (default: default_cache_dir()). Empty
    strings count as not given, as in the training config; `~` is expanded.
    """
    return load_idx_set(MNIST_GZ_MD5, "MNIST", data_dir, cache_dir or default_cache_dir(), mirrors, split)


def load_idx_set(
    gz_md5: dict[str, str],
    title: str,
    data_dir: str | os.PathLike | None,
    cache_dir: str | os.PathLike,
    mirrors: Sequence[str],
    split: str = "train",
) -> tuple[np.ndarray, np.ndarray]:
    """A data set published as MNIST is: {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, ten
    classes. `gz_md5` maps each file name to its MD5; `title` is torchvision's folder name for the
    set ("MNIST", "FashionMNIST", "KMNIST"), so that a torchvision root works as `data_dir` too."""
    if split not in SPLIT_PREFIXES:
        valid = ", ".join(SPLIT_PREFIXES)
        raise ConfigError(f"{title} split {split!r} unknown; valid splits: {valid}")
    prefix = SPLIT_PREFIXES[split]
    names = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    if data_dir:
        data_dir = Path(data_dir).expanduser()
        images_path, labels_path = (_find_local(data_dir, name, gz_md5, title) for name in names)
    else:
        cache_dir = Path(cache_dir).expanduser()
        try:  # here, not in the download: a file in the way is the folder's fault, not a mirror's
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # 'a-file/mnist': NotADirectoryError; a read-only parent: PermissionError
            raise ConfigError(f"cache folder '{cache_dir}' cannot be created: {error.strerror or error}") from None
        images_path, labels_path = (
            download_file(name + ".gz", gz_md5[name + ".gz"], cache_dir, mirrors) for name in names
        )
    return load_images_and_labels(images_path, labels_path)


def _find_local(data_dir: Path, name: str, gz_md5: dict[str, str], title: str) -> Path:
    """`name.gz` (MD5-checked) or else `name`, in data_dir or in a torchvision root's <title>/raw."""
    candidates = []
    for folder in (data_dir, data_dir / title / "raw"):
        gz_path, plain_path = folder / (name + ".gz"), folder / name
        candidates += [gz_path, plain_path]
        # Prefer the .gz: its MD5 is known, so a damaged copy is caught before parsing.
        if gz_path.is_file():
            _verify_checksum(gz_path, gz_md5[gz_path.name], "md5")
            return gz_path
        if plain_path.is_file():
            return plain_path
    looked = ", ".join(str(path) for path in candidates)
    raise DataError(f"{data_dir}: no {title} file {name}; looked for {looked}")


# ---------------------------------------------------------------------------- training tensor


def to_training_tensor(images: np.ndarray, device) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 (N, 784) on `device`, scaled [0, 255] -> [-1, 1].

    The whole set becomes one device tensor, so the training loop slices batches without copies.
    """
    import torch

    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"want uint8 images (N, H, W), got {images.dtype} {images.shape}")
    # Move the uint8 bytes (4x smaller than float32), then convert on the device.
    pixels = torch.from_numpy(np.ascontiguousarray(images)).to(device)  # (N, 28, 28) uint8
    flat = pixels.reshape(len(images), -1).to(torch.float32)  # (N, 784), a fresh copy
    # In place: no second (N, 784) temporary. On the CPU this is ganpack.contract.from_uint8 bit for
    # bit (tests/test_contract.py); even where a backend divides by multiplying with float32(1 / 127.5),
    # 0 -> -1.0 and 255 -> 1.0 come out exact.
    return flat.div_(PIXEL_SCALE).sub_(1.0)
