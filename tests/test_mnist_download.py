"""Full MNIST end to end, offline: generated IDX files served on 127.0.0.1 (one mirror corrupt),
downloaded into a cache with checksums checked, then trained on with `--data mnist`."""

import gzip
import hashlib
import struct

import numpy as np
import pytest

from mirrors import served_mirrors
from training import mnist
from training.errors import DataError
from training.run import main


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


@pytest.fixture
def served_mnist(tmp_path, monkeypatch):
    """Mirrors good/ and corrupt/ serving a generated 300-image train split; yields their URLs."""
    monkeypatch.setenv("no_proxy", "*")
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte.gz": idx_gz(rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)),
             "train-labels-idx1-ubyte.gz": idx_gz(rng.integers(0, 10, 300, dtype=np.uint8))}
    monkeypatch.setattr(mnist, "MNIST_GZ_MD5", {n: hashlib.md5(b).hexdigest() for n, b in files.items()})
    with served_mirrors(tmp_path / "served", files, flip_at=100) as urls:
        yield urls


def test_download_skips_the_corrupt_mirror_then_trains(served_mnist, tmp_path):
    good, corrupt = served_mnist
    cache = tmp_path / "cache"
    images, labels = mnist.load_mnist(cache_dir=cache, mirrors=[corrupt, good])
    assert images.shape == (300, 28, 28) and labels.shape == (300,)
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    # the downloaded cache is a valid --data-dir for a training run
    argv = ["--data", "mnist", "--data-dir", str(cache), "--dry-run", "--out_dir", str(tmp_path / "runs"),
            "--name", "full", "--progress", "false", "--threads", "1"]
    assert main(argv) == 0
    assert (tmp_path / "runs" / "full" / "samples" / "final.png").exists()


def test_only_corrupt_mirrors_is_an_error_naming_the_file(served_mnist, tmp_path):
    _, corrupt = served_mnist
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        mnist.load_mnist(cache_dir=tmp_path / "cache", mirrors=[corrupt])
    assert not (tmp_path / "cache" / "train-images-idx3-ubyte.gz").exists()
