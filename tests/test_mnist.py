"""Tests for training/mnist.py: IDX parsing, the bundled subset, local full MNIST, the tensor."""

import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest
import torch

from training import datasets, mnist
from training.errors import ConfigError, DataError

# ---------------------------------------------------------------------------- helpers


def idx_payload(array, dtype_code=0x08):
    """IDX bytes written by hand, independent of the script that builds the assets."""
    header = bytes([0, 0, dtype_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array, gzipped=False):
    payload = idx_payload(array)
    path.write_bytes(gzip.compress(payload, mtime=0) if gzipped else payload)
    return path


def random_digits(count, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


# ---------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 28, 28)])
def test_read_idx_round_trips(tmp_path, shape, gzipped):
    array = np.arange(np.prod(shape), dtype=np.uint32).astype(np.uint8).reshape(shape)
    result = mnist.read_idx(write_idx(tmp_path / "data.idx", array, gzipped))
    assert result.dtype == np.uint8 and result.shape == shape
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable  # torch.from_numpy warns on read-only arrays


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    plain_named_gz = write_idx(tmp_path / "plain.gz", array, gzipped=False)
    gzip_named_plain = write_idx(tmp_path / "packed.idx", array, gzipped=True)
    np.testing.assert_array_equal(mnist.read_idx(plain_named_gz), array)
    np.testing.assert_array_equal(mnist.read_idx(gzip_named_plain), array)


def corrupt_gzip(payload):
    packed = bytearray(gzip.compress(payload, mtime=0))
    packed[len(packed) // 2] ^= 0xFF  # damage the deflate stream or its CRC
    return bytes(packed)


SMALL = idx_payload(np.zeros(5, np.uint8))
VARIED = idx_payload(np.arange(2000, dtype=np.uint32).astype(np.uint8))

BAD_FILES = {
    "wrong_magic": (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "magic"),
    "wrong_dtype": (idx_payload(np.zeros(4, np.uint8), dtype_code=0x0D), "type 0x0d"),
    "zero_dims": (b"\x00\x00\x08\x00", "dims"),
    "short_header": (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "header truncated"),
    "truncated": (idx_payload(np.zeros((3, 4), np.uint8))[:-1], "truncated"),
    "trailing": (idx_payload(np.zeros((3, 4), np.uint8)) + b"\x00", "trailing"),
    "truncated_gz": (gzip.compress(idx_payload(np.zeros(1000, np.uint8)), mtime=0)[:-12], "gzip"),
    "corrupt_gz": (corrupt_gzip(VARIED), "gzip"),
    "data_short_in_gz": (gzip.compress(SMALL[:-2], mtime=0), "truncated"),
    "data_long_in_gz": (gzip.compress(SMALL + b"xx", mtime=0), "trailing"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_read_idx_rejects_bad_files(tmp_path, case):
    content, expected_phrase = BAD_FILES[case]
    path = tmp_path / f"{case}.idx"
    path.write_bytes(content)
    with pytest.raises(DataError) as raised:
        mnist.read_idx(path)
    assert path.name in str(raised.value)
    assert expected_phrase in str(raised.value)


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_refuses_huge_declared_dims_without_allocating(tmp_path, gzipped):
    # Declares 2**96 bytes of data but holds 10; must fail fast instead of trying to allocate.
    payload = b"\x00\x00\x08\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(10)
    path = tmp_path / "huge.idx"
    path.write_bytes(gzip.compress(payload, mtime=0) if gzipped else payload)
    with pytest.raises(DataError, match="huge.idx.*truncated"):
        mnist.read_idx(path)


def test_read_idx_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="absent.idx"):
        mnist.read_idx(tmp_path / "absent.idx")


# ---------------------------------------------------------------------------- images with labels


MISMATCHES = {  # (images (N, H, W), labels (N,), phrase the DataError must contain)
    "counts": (np.zeros((5, 28, 28)), np.zeros(4), "imgs.idx holds 5 images but .*lbls.idx holds 4"),
    "label_range": (np.zeros((5, 28, 28)), [0, 1, 2, 10, 4], "lbls.idx.*first is 10 at index 3"),
    "image_size": (np.zeros((2, 27, 28)), np.zeros(2), "imgs.idx.*want \\(N, 28, 28\\)"),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_load_images_and_labels_rejects_mismatches(tmp_path, case):
    images, labels, phrase = MISMATCHES[case]
    images_path = write_idx(tmp_path / "imgs.idx", np.asarray(images))
    labels_path = write_idx(tmp_path / "lbls.idx", np.asarray(labels))
    with pytest.raises(DataError, match=phrase):
        mnist.load_images_and_labels(images_path, labels_path)


# ---------------------------------------------------------------------------- bundled subset


def test_bundled_subset_is_5000_balanced_digits():
    images, labels = mnist.load_bundled()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    assert images.max() == 255 and images.min() == 0


def test_tampered_bundled_copy_is_refused(tmp_path, monkeypatch):
    for name in mnist.BUNDLED_SHA256:
        shutil.copy(mnist.BUNDLED_DIR / name, tmp_path / name)
    tampered = tmp_path / mnist.BUNDLED_IMAGES
    content = bytearray(tampered.read_bytes())
    content[1000] ^= 0x01
    tampered.write_bytes(bytes(content))
    monkeypatch.setattr(mnist, "BUNDLED_DIR", tmp_path)
    with pytest.raises(DataError, match=f"{mnist.BUNDLED_IMAGES}.*SHA256"):
        mnist.load_bundled()


# ---------------------------------------------------------------------------- full MNIST from disk


@pytest.fixture
def torchvision_raw(tmp_path, monkeypatch):
    """root/MNIST/raw holding both .gz and extracted files, as torchvision leaves it."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    checksums = {}
    for prefix, count in (("train", 6), ("t10k", 3)):
        images, labels = random_digits(count, seed=count)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            write_idx(raw / name, array)
            gz_bytes = write_idx(raw / (name + ".gz"), array, gzipped=True).read_bytes()
            checksums[name + ".gz"] = hashlib.md5(gz_bytes).hexdigest()
    monkeypatch.setattr(mnist, "MNIST_GZ_MD5", checksums)
    return raw


@pytest.mark.parametrize("split, count", [("train", 6), ("test", 3)])
def test_load_mnist_reads_a_torchvision_raw_folder(torchvision_raw, split, count):
    images, labels = mnist.load_mnist(data_dir=torchvision_raw, split=split)
    expected_images, expected_labels = random_digits(count, seed=count)
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)


def test_load_mnist_accepts_the_torchvision_root_too(torchvision_raw):
    images, _ = mnist.load_mnist(data_dir=torchvision_raw.parent.parent)
    assert images.shape == (6, 28, 28)


def test_load_mnist_checks_the_gz_md5(torchvision_raw, monkeypatch):
    monkeypatch.setitem(mnist.MNIST_GZ_MD5, "train-labels-idx1-ubyte.gz", "0" * 32)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*MD5"):
        mnist.load_mnist(data_dir=torchvision_raw)


def test_load_mnist_uncompressed_only(torchvision_raw):
    for gz_path in torchvision_raw.glob("*.gz"):
        gz_path.unlink()
    images, labels = mnist.load_mnist(data_dir=torchvision_raw)
    assert images.shape == (6, 28, 28) and labels.shape == (6,)


def test_load_mnist_missing_file_names_what_was_looked_for(torchvision_raw):
    for path in torchvision_raw.glob("train-labels*"):
        path.unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        mnist.load_mnist(data_dir=torchvision_raw)


@pytest.fixture
def filled_cache(torchvision_raw, tmp_path):
    """A cache folder already holding the train .gz files (MD5s patched by torchvision_raw)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for gz_path in torchvision_raw.glob("train-*.gz"):
        shutil.copy(gz_path, cache / gz_path.name)
    return cache


def test_load_mnist_uses_a_filled_cache_without_network(filled_cache):
    images, _ = mnist.load_mnist(cache_dir=filled_cache, mirrors=())  # no mirrors: needs none
    assert images.shape == (6, 28, 28)


def test_load_mnist_empty_cache_and_no_mirrors_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        mnist.load_mnist(cache_dir=tmp_path, mirrors=())


def test_default_cache_dir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert mnist.default_cache_dir() == tmp_path / "ganpack" / "mnist"


def test_load_mnist_rejects_unknown_split(tmp_path):
    with pytest.raises(ConfigError, match="validation"):
        mnist.load_mnist(data_dir=tmp_path, split="validation")


# ---------------------------------------------------------------------------- through load_dataset


def test_load_dataset_by_name(torchvision_raw, tmp_path):
    assert datasets.load_dataset("bundled", "", str(tmp_path)).images.shape == (5000, 28, 28)
    data = datasets.load_dataset("mnist", str(torchvision_raw), str(tmp_path))
    assert data.images.shape == (6, 28, 28) and data.labels.tolist() == random_digits(6, seed=6)[1].tolist()


def test_load_dataset_empty_data_dir_means_the_cache(filled_cache):
    # The training config spells "not given" as "", not None.
    assert datasets.load_dataset("mnist", "", str(filled_cache)).images.shape == (6, 28, 28)


def test_load_dataset_refuses_data_dir_for_bundled(tmp_path):
    with pytest.raises(ConfigError, match="data_dir"):
        datasets.load_dataset("bundled", str(tmp_path), "")


def test_load_dataset_unknown_name_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="'fashion'.*bundled, mnist, fashion-mnist, kmnist"):
        datasets.load_dataset("fashion", "", str(tmp_path))


# ---------------------------------------------------------------------------- training tensor


def test_to_training_tensor_scales_to_minus_one_one():
    images = np.zeros((3, 28, 28), np.uint8)
    images[1] = 255
    images[2] = 128
    tensor = mnist.to_training_tensor(images, "cpu")
    assert tensor.shape == (3, 784) and tensor.dtype == torch.float32
    assert torch.all(tensor[0] == -1.0) and torch.all(tensor[1] == 1.0)
    assert tensor.min().item() == -1.0 and tensor.max().item() == 1.0
    torch.testing.assert_close(tensor[2], torch.full((784,), 128 / 127.5 - 1))
