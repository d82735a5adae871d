"""Tests for training/datasets.py and training/image_folder.py: every source on small data the
tests write, downloads from a server on 127.0.0.1 only, every refusal naming its file; then a
dry run on a .npz through `python -m training.run`, and the package it writes: its provenance
names the data and no folder of the machine it was made on."""

import dataclasses
import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mirrors import served_mirrors
from training import datasets, mnist
from training.config import TrainConfig, validate
from training.errors import ConfigError, DataError

Image = pytest.importorskip("PIL.Image")
ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def digits(count: int, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (count, 28, 28) and labels (count,) in 0..classes-1."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), rng.integers(0, classes, count, dtype=np.uint8)


def png(pixels: np.ndarray, mode: str = "L", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(out, format=fmt)
    return out.getvalue()


def sha256(images: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes()).hexdigest()


# ---------------------------------------------------------------------------- named data sets


def test_bundled_is_labeled_digits_with_a_source_record():
    data = datasets.load_dataset("bundled")
    assert data.images.shape == (5000, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.labels.shape == (5000,)
    assert data.class_names == [str(digit) for digit in range(10)]
    assert data.source == {"kind": "bundled", "name": "bundled", "images": 5000, "sha256": sha256(data.images),
                           "labeled": True, "class_names": data.class_names}


def torchvision_root(root: Path, title: str, count: int = 6, seed: int = 0) -> dict:
    """root/<title>/raw with the train split gzipped, as torchvision leaves it; returns their MD5s."""
    raw = root / title / "raw"
    raw.mkdir(parents=True)
    images, labels = digits(count, seed=seed)
    checksums = {}
    for name, array in (("train-images-idx3-ubyte.gz", images), ("train-labels-idx1-ubyte.gz", labels)):
        payload = gzip.compress(idx_bytes(array), mtime=0)
        (raw / name).write_bytes(payload)
        checksums[name] = hashlib.md5(payload).hexdigest()
    return checksums


def test_mnist_from_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_GZ_MD5", torchvision_root(tmp_path, "MNIST"))
    data = datasets.load_dataset("mnist", str(tmp_path))
    assert data.images.shape == (6, 28, 28) and data.source["kind"] == "mnist" and data.source["labeled"]


def test_kmnist_from_a_torchvision_root(tmp_path, monkeypatch):
    spec = dataclasses.replace(datasets.IDX_SETS["kmnist"], gz_md5=torchvision_root(tmp_path, "KMNIST", seed=3))
    monkeypatch.setitem(datasets.IDX_SETS, "kmnist", spec)
    data = datasets.load_dataset("kmnist", str(tmp_path))
    images, labels = digits(6, seed=3)
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
    assert data.source["kind"] == data.source["name"] == "kmnist"


def test_named_sets_carry_torchvision_s_checksums_and_class_names():
    for name, spec in datasets.IDX_SETS.items():
        assert sorted(spec.gz_md5) == sorted(mnist.MNIST_GZ_MD5), name
        assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in spec.gz_md5.values()), name
        assert len(spec.class_names) == 10 and spec.mirrors, name
    assert datasets.IDX_SETS["fashion-mnist"].gz_md5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert datasets.IDX_SETS["fashion-mnist"].class_names[0] == "T-shirt/top"


@pytest.fixture
def served_fashion(tmp_path, monkeypatch):
    """Mirrors good/ and corrupt/ on 127.0.0.1 serving a 300-image Fashion-MNIST train split,
    with the checksum table and mirror list patched to them. Yields (good, corrupt) URLs."""
    monkeypatch.setenv("no_proxy", "*")  # a proxy from the environment must not see 127.0.0.1
    images, labels = digits(300, seed=5)
    files = {"train-images-idx3-ubyte.gz": gzip.compress(idx_bytes(images), mtime=0),
             "train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(labels), mtime=0)}
    checksums = {**datasets.IDX_SETS["fashion-mnist"].gz_md5,
                 **{name: hashlib.md5(payload).hexdigest() for name, payload in files.items()}}

    def use_mirrors(*mirrors):
        spec = dataclasses.replace(datasets.IDX_SETS["fashion-mnist"], gz_md5=checksums, mirrors=mirrors)
        monkeypatch.setitem(datasets.IDX_SETS, "fashion-mnist", spec)

    with served_mirrors(tmp_path / "served", files, flip_at=50) as (good, corrupt):
        yield use_mirrors, good, corrupt, images


def test_fashion_mnist_downloads_past_a_corrupt_mirror(served_fashion, tmp_path):
    use_mirrors, good, corrupt, images = served_fashion
    use_mirrors(corrupt, good)
    data = datasets.load_dataset("fashion-mnist", "", str(tmp_path / "cache"))
    np.testing.assert_array_equal(data.images, images)
    assert data.class_names[-1] == "Ankle boot" and data.source["kind"] == "fashion-mnist"
    # a shared cache_dir keeps each set in a subfolder: the files have MNIST's names
    assert sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir()) == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    use_mirrors()  # no mirrors: the cache alone must do now
    assert datasets.load_dataset("fashion-mnist", "", str(tmp_path / "cache")).source == data.source


def test_fashion_mnist_with_only_a_corrupt_mirror_is_refused(served_fashion, tmp_path, monkeypatch):
    use_mirrors, _, corrupt, _ = served_fashion
    use_mirrors(corrupt)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz with MD5"):
        datasets.load_dataset("fashion-mnist")
    folder = tmp_path / "xdg" / "ganpack" / "fashion-mnist"  # the default cache
    assert folder.is_dir() and not list(folder.iterdir())  # nothing damaged left looking valid


@pytest.mark.parametrize("data", ["bundled", "some.npz"])
def test_data_dir_is_only_for_downloaded_sets(tmp_path, monkeypatch, data):
    np.savez(tmp_path / "some.npz", images=digits(3)[0])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="data_dir '.*' is only for the data sets mnist, fashion-mnist, kmnist"):
        datasets.load_dataset(data, str(tmp_path))


@pytest.mark.parametrize("data, cache_dir, folder", [("mnist", "", "a-file/ganpack/mnist"),
                                                   ("fashion-mnist", "", "a-file/ganpack/fashion-mnist"),
                                                   ("kmnist", "a-file/sub", "a-file/sub/kmnist")])
def test_a_download_folder_under_a_file_is_one_line(tmp_path, monkeypatch, data, cache_dir, folder):
    """The default cache (under $XDG_CACHE_HOME) or cache_dir, with a file where a folder must be."""
    (tmp_path / "a-file").write_text("not a folder\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "a-file")
    with pytest.raises(ConfigError, match=f"^cache folder '{folder}' cannot be created: Not a directory$"):
        datasets.load_dataset(data, cache_dir=cache_dir)
    config = TrainConfig()
    config.data.data, config.data.cache_dir = data, cache_dir or folder
    with pytest.raises(ConfigError, match=f"^config key 'cache_dir' must name a folder, not a file or a path under "
                                          f"one, got '{config.data.cache_dir}'$"):
        validate(config)


@pytest.mark.parametrize("data", ["fashion", "", "no-such-file.npz"])
def test_unknown_names_and_missing_paths_are_refused(tmp_path, data):
    with pytest.raises(ConfigError, match=f"data '{data}' is neither a data set .bundled, mnist, fashion-mnist"):
        datasets.load_dataset(data)


def test_the_config_checks_data_before_anything_loads(tmp_path):
    config = TrainConfig()
    config.data.data = str(tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match="config key 'data' must be one of bundled, mnist, fashion-mnist, kmnist "
                                          "or a file or folder that exists, got '.*missing.npz'"):
        validate(config)
    config.data.data = ""
    with pytest.raises(ConfigError, match="config key 'data'"):
        validate(config)
    (tmp_path / "missing.npz").write_bytes(b"")
    config.data.data = str(tmp_path / "missing.npz")
    validate(config)  # exists: what it holds is checked when it is loaded


# ---------------------------------------------------------------------------- IDX, .npy, .npz


@pytest.mark.parametrize("images_name, labels_name", [
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte"),  # labels not gzipped
    ("mine-images.idx3-ubyte", "mine-labels.idx1-ubyte"),  # a dot, as some copies name them
])
def test_idx_file_with_its_labels_beside_it(tmp_path, images_name, labels_name):
    images, labels = digits(7, classes=4)
    for name, array in ((images_name, images), (labels_name, labels)):
        payload = idx_bytes(array)
        (tmp_path / name).write_bytes(gzip.compress(payload, mtime=0) if name.endswith(".gz") else payload)
    data = datasets.load_dataset(str(tmp_path / images_name))
    np.testing.assert_array_equal(data.labels, labels)
    assert data.class_names == [str(c) for c in range(int(labels.max()) + 1)]
    assert data.source == {"kind": "idx", "name": images_name, "images": 7, "sha256": sha256(images),
                           "labeled": True, "class_names": data.class_names}


def test_idx_file_alone_is_unlabeled(tmp_path):
    images, _ = digits(4)
    (tmp_path / "faces.idx").write_bytes(idx_bytes(images))
    data = datasets.load_dataset(str(tmp_path / "faces.idx"))
    np.testing.assert_array_equal(data.images, images)
    assert data.labels is None and data.class_names is None and not data.source["labeled"]


def test_npy_array(tmp_path):
    images, _ = digits(5)
    np.save(tmp_path / "digits.npy", images)
    data = datasets.load_dataset(str(tmp_path / "digits.npy"))
    np.testing.assert_array_equal(data.images, images)
    assert data.labels is None and data.source["kind"] == "npy" and data.source["name"] == "digits.npy"


@pytest.mark.parametrize("images_key, labels_key", [("images", "labels"), ("x_train", "y_train")])
def test_npz_with_labels(tmp_path, images_key, labels_key):
    images, labels = digits(9, classes=3)
    np.savez_compressed(tmp_path / "set.npz", **{images_key: images, labels_key: labels.astype(np.int32)})
    data = datasets.load_dataset(str(tmp_path / "set.npz"))
    np.testing.assert_array_equal(data.images, images)
    assert data.labels.dtype == np.int64 and np.array_equal(data.labels, labels)
    assert data.class_names == ["0", "1", "2"] and data.source["kind"] == "npz"


def test_npz_without_labels(tmp_path):
    np.savez(tmp_path / "set.npz", images=digits(2)[0])
    data = datasets.load_dataset(str(tmp_path / "set.npz"))
    assert data.labels is None and data.source["labeled"] is False


def test_files_are_told_apart_by_content_not_suffix(tmp_path):
    images, _ = digits(3)
    np.save(tmp_path / "a.npy", images)
    (tmp_path / "a.npy").rename(tmp_path / "images.bin")
    assert datasets.load_dataset(str(tmp_path / "images.bin")).source["kind"] == "npy"


def array_file(tmp_path, name, **arrays):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, arrays["array"], allow_pickle=True)
    else:
        np.savez(path, **arrays)
    return path


FLOAT = np.zeros((3, 28, 28), np.float32)
GOOD = np.zeros((3, 28, 28), np.uint8)
BAD_ARRAYS = {  # name -> (arrays, the phrase the DataError must contain after the file's name)
    "float.npy": ({"array": FLOAT}, "the array has dtype float32, want uint8"),
    "flat.npy": ({"array": np.zeros((3, 784), np.uint8)}, r"the array has shape \(3, 784\), want \(N, 28, 28\)"),
    "empty.npy": ({"array": np.zeros((0, 28, 28), np.uint8)},
                  r"the array has shape \(0, 28, 28\), want \(N, 28, 28\) with N >= 1"),
    "objects.npy": ({"array": np.array([{"a": 1}], dtype=object)}, "cannot read it"),
    "keys.npz": ({"pixels": GOOD}, r"no images array: want 'images' or 'x_train' .* it holds \['pixels'\]"),
    "count.npz": ({"images": GOOD, "labels": np.zeros(2, np.int64)},
                  r"array 'labels' has shape \(2,\), want \(3,\): one label per image"),
    "float-labels.npz": ({"images": GOOD, "labels": np.zeros(3)}, "array 'labels' has dtype float64, want integers"),
    "negative.npz": ({"images": GOOD, "labels": np.array([0, -1, 2])},
                     "array 'labels' holds 1 labels outside 0 to 999; first is -1 at index 1"),
    "huge-label.npz": ({"images": GOOD, "labels": np.array([0, 1, 5000])},
                       "array 'labels' holds 1 labels outside 0 to 999; first is 5000 at index 2"),
    "float-images.npz": ({"images": FLOAT}, "array 'images' has dtype float32, want uint8"),
}


@pytest.mark.parametrize("name", sorted(BAD_ARRAYS))
def test_bad_arrays_are_refused_naming_the_file(tmp_path, name):
    arrays, phrase = BAD_ARRAYS[name]
    path = array_file(tmp_path, name, **arrays)
    with pytest.raises(DataError, match=f"{name}: {phrase}"):
        datasets.load_dataset(str(path))


def test_damaged_files_are_refused_naming_the_file(tmp_path):
    np.savez(tmp_path / "cut.npz", images=digits(50)[0])
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:5000])
    np.save(tmp_path / "cut.npy", digits(50)[0])
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:5000])
    (tmp_path / "text.npz").write_text("not a zip\n")
    (tmp_path / "notes.txt").write_text("not an IDX file\n")
    (tmp_path / "one.png").write_bytes(png(GOOD[0]))
    for name, phrase in (("cut.npz", "cannot read it"), ("cut.npy", "cannot read it"),
                         ("text.npz", "not a NumPy .npz file"), ("notes.txt", "not an IDX file"),
                         ("one.png", "a single image; give the folder")):
        with pytest.raises(DataError, match=f"{name}.*{phrase}"):
            datasets.load_dataset(str(tmp_path / name))


# ---------------------------------------------------------------------------- folders of images


def test_folder_without_subfolders_is_unlabeled_and_sorted(tmp_path):
    images, _ = digits(3)
    for index, name in enumerate(["b.png", "a.PNG", "c.png"]):
        (tmp_path / name).write_bytes(png(images[index]))
    (tmp_path / "README.txt").write_text("skipped: not an image\n")
    (tmp_path / ".hidden.png").write_bytes(b"skipped: hidden")
    data = datasets.load_dataset(str(tmp_path))
    np.testing.assert_array_equal(data.images, images[[1, 0, 2]])  # a.PNG, b.png, c.png
    assert data.labels is None and data.source["kind"] == "folder" and data.source["name"] == tmp_path.name
    assert data.source["sha256"] == sha256(images[[1, 0, 2]])


def test_subfolders_are_classes(tmp_path):
    images, _ = digits(4)
    layout = {"zebra/1.png": images[0], "ant/2.png": images[1], "ant/deeper/3.png": images[2], "moth/4.png": images[3]}
    for name, pixels in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(png(pixels))
    data = datasets.load_dataset(str(tmp_path))
    assert data.class_names == ["ant", "moth", "zebra"]
    # sorted by path: ant/2.png, ant/deeper/3.png, moth/4.png, zebra/1.png
    assert data.labels.tolist() == [0, 0, 1, 2]
    np.testing.assert_array_equal(data.images, images[[1, 2, 3, 0]])
    assert data.source["class_names"] == ["ant", "moth", "zebra"] and data.source["labeled"]


def test_color_and_other_sizes_become_28x28_gray(tmp_path):
    rgb = np.zeros((40, 56, 3), np.uint8)
    rgb[:, :28] = (255, 255, 255)  # the left half white
    (tmp_path / "wide.png").write_bytes(png(rgb, mode="RGB"))
    (tmp_path / "photo.jpg").write_bytes(png(np.full((28, 28), 200, np.uint8), fmt="JPEG"))
    data = datasets.load_dataset(str(tmp_path))
    assert data.images.shape == (2, 28, 28)
    photo, wide = data.images  # photo.jpg sorts first
    assert abs(int(photo.mean()) - 200) <= 2  # JPEG is lossy
    assert wide[:, :12].min() >= 250 and wide[:, 16:].max() <= 5  # stretched to 28 wide, still half and half


def test_a_folder_reads_the_same_twice(tmp_path):
    for index, pixels in enumerate(digits(5)[0]):
        (tmp_path / f"{index}.png").write_bytes(png(pixels))
    assert datasets.load_dataset(str(tmp_path)).source == datasets.load_dataset(str(tmp_path)).source


def test_folder_mistakes_name_the_folder_or_file(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here\n")
    with pytest.raises(DataError, match="empty: no PNG or JPEG images in the folder or its subfolders"):
        datasets.load_dataset(str(tmp_path / "empty"))
    (tmp_path / "mixed" / "cats").mkdir(parents=True)
    (tmp_path / "mixed" / "loose.png").write_bytes(png(GOOD[0]))
    (tmp_path / "mixed" / "cats" / "tom.png").write_bytes(png(GOOD[0]))
    with pytest.raises(DataError, match=r"mixed: 1 images lie in the folder itself \(such as 'loose.png'\) and 1 in "
                                        r"subfolders \(such as 'cats/tom.png'\)"):
        datasets.load_dataset(str(tmp_path / "mixed"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "fine.png").write_bytes(png(GOOD[0]))
    (tmp_path / "broken" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "broken" / "cut.png").write_bytes(png(digits(1)[0][0])[:60])
    for name in ("cut.png", "junk.png"):
        (tmp_path / "broken" / name).rename(tmp_path / "broken" / ("a-" + name))  # sorted first, so read first
        with pytest.raises(DataError, match=f"broken/a-{name}: cannot read it as an image"):
            datasets.load_dataset(str(tmp_path / "broken"))
        (tmp_path / "broken" / ("a-" + name)).unlink()


# ---------------------------------------------------------------------------- resume


def test_a_resumed_run_must_see_the_same_images():
    source = datasets.load_dataset("bundled").source
    datasets.check_resumed_data(source, None)  # a new run
    datasets.check_resumed_data(source, {"step": 4})  # a checkpoint from before sources were recorded
    datasets.check_resumed_data(source, {"data_source": dict(source)})
    with pytest.raises(DataError, match="the data 'bundled' .* is not what this run was trained on .'digits.npz'"):
        datasets.check_resumed_data(source, {"data_source": {**source, "name": "digits.npz", "sha256": "0" * 64}})


# ---------------------------------------------------------------------------- a run on your own data


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
    """`python -m training.run --data digits.npz --dry_run` with every folder key set to an absolute
    path, and caches under the test's folder; returns (work folder, run folder, completed process)."""
    work = tmp_path_factory.mktemp("own-data")
    images, labels = digits(300, classes=3, seed=9)
    np.savez(work / "digits.npz", images=images, labels=labels)
    command = [sys.executable, "-m", "training.run", "--data", str(work / "digits.npz"), "--dry_run",
               "--out_dir", str(work / "runs"), "--name", "own", "--cache_dir", str(work / "cache"),
               "--evaluator_cache", str(work / "evaluator"), "--progress", "false", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(work / "xdg")}
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return work, work / "runs" / "own", done


def strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_a_dry_run_on_a_npz_records_its_data_without_paths(npz_run):
    work, run_dir, _ = npz_run
    text = (run_dir / "model" / "manifest.json").read_text()
    manifest = json.loads(text)
    expected = datasets.load_dataset(str(work / "digits.npz")).source
    assert manifest["provenance"]["data"] == expected
    assert expected["name"] == "digits.npz" and expected["images"] == 300 and expected["class_names"] == ["0", "1", "2"]
    assert manifest["provenance"]["dataset"] == "digits.npz"
    assert manifest["training_config"]["data"] == {"data": "digits.npz", "data_dir": "", "cache_dir": "",
                                                   "batch_size": 256}
    assert manifest["training_config"]["run"]["out_dir"] == manifest["training_config"]["run"]["evaluator_cache"] == ""
    for folder in (str(work), str(Path.home()), os.path.realpath(work)):
        assert folder not in text
    assert not [value for value in strings(manifest) if value.startswith(("/", "~")) or "\\" in value]


def test_the_checkpoint_keeps_the_source_and_the_run_config_its_paths(npz_run):
    import torch

    work, run_dir, _ = npz_run
    state = torch.load(sorted((run_dir / "checkpoints").iterdir())[-1], weights_only=True)
    assert state["data_source"] == datasets.load_dataset(str(work / "digits.npz")).source
    assert json.loads((run_dir / "config.json").read_text())["data"]["data"] == str(work / "digits.npz")


def test_resuming_on_changed_data_is_refused(npz_run, tmp_path):
    import shutil

    from training.run import main

    work, run_dir, _ = npz_run
    copy = shutil.copytree(run_dir, tmp_path / "own")
    original = (work / "digits.npz").read_bytes()
    images, labels = digits(300, classes=3, seed=10)  # other images under the same name
    np.savez(work / "digits.npz", images=images, labels=labels)
    try:
        with pytest.raises(DataError, match="is not what this run was trained on"):
            main(["--resume", str(copy), "--progress", "false", "--threads", "1"])
    finally:
        (work / "digits.npz").write_bytes(original)


# ---------------------------------------------------------------------------- resume from another folder

TINY = ["--dry_run", "--batch_size", "100", "--eval_every", "0", "--export", "false", "--progress", "false",
        "--threads", "1"]
RESUME = ["--epochs", "2", "--progress", "false", "--threads", "1"]


@pytest.fixture
def relative_run(tmp_path, monkeypatch):
    """A one-epoch dry run started in tmp_path/start with `--data digits.npz` (300 images, three
    classes, beside it) and `--out_dir runs`; the test then stands in tmp_path/elsewhere.
    Returns (the data's folder, the run folder)."""
    from training.run import main

    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    images, labels = digits(300, classes=3, seed=9)
    np.savez(start / "digits.npz", images=images, labels=labels)
    monkeypatch.chdir(start)
    assert main(["--data", "digits.npz", "--epochs", "1", "--out_dir", "runs", "--name", "own", *TINY]) == 0
    monkeypatch.chdir(elsewhere)
    return start, start / "runs" / "own"


def newest_state(run_dir: Path) -> dict:
    from training import checkpoint

    return checkpoint.load_latest(run_dir)[0]


def test_a_run_on_a_relative_data_path_resumes_from_another_folder(relative_run):
    from training.run import main

    start, run_dir = relative_run
    recorded = str(start / "digits.npz")  # made absolute, so that any folder finds it
    assert json.loads((run_dir / "config.json").read_text())["data"]["data"] == recorded
    assert newest_state(run_dir)["config"]["data"]["data"] == recorded
    assert main(["--resume", str(run_dir), *RESUME]) == 0
    assert newest_state(run_dir)["epoch"] == 2


def test_a_resume_may_name_the_same_data_again_but_not_other_data(relative_run, monkeypatch):
    """A run that recorded its data relative to the folder it started in (as runs did before
    paths were recorded absolute) or whose data has moved: --data names it again on --resume, and
    the images' SHA-256 and classes must be the checkpoint's."""
    import torch

    from training import checkpoint
    from training.run import main

    start, run_dir = relative_run
    (newest,) = checkpoint.list_checkpoints(run_dir)[-1:]
    state = torch.load(newest, weights_only=True)
    state["config"]["data"]["data"] = "digits.npz"  # as given, relative to start/
    checkpoint.save_checkpoint(state, newest)
    images, labels = digits(300, classes=3, seed=9)
    np.savez("moved.npz", images=images, labels=labels)  # the same data, elsewhere under another name
    np.savez("other.npz", images=digits(300, classes=3, seed=10)[0], labels=labels)
    np.savez("relabeled.npz", images=images, labels=labels % 2)

    with pytest.raises(ConfigError, match=r"^the run's data 'digits.npz' is not found from '.*elsewhere'; pass "
                                          r"--data with its path \(its images must be the run's"):
        main(["--resume", str(run_dir), *RESUME])
    with pytest.raises(DataError, match=r"^the data 'other.npz' \(300 images, SHA-256 .*\) is not what this run "
                                        r"was trained on \('digits.npz', 300 images"):
        main(["--resume", str(run_dir), "--data", "other.npz", *RESUME])
    with pytest.raises(DataError, match=r"^the data 'relabeled.npz' holds this run's images, but its class_names "
                                        r"is \['0', '1'\], not \['0', '1', '2'\]"):
        main(["--resume", str(run_dir), "--data", "relabeled.npz", *RESUME])
    assert newest_state(run_dir)["epoch"] == 1  # refused before anything was written
    assert main(["--resume", str(run_dir), "--data", "moved.npz", *RESUME]) == 0
    resumed = newest_state(run_dir)
    assert resumed["epoch"] == 2 and resumed["config"]["data"]["data"] == str(Path("moved.npz").absolute())
    assert resumed["data_source"]["sha256"] == state["data_source"]["sha256"]

    del state["data_source"]  # a checkpoint from before sources were recorded: nothing to check a new path by
    checkpoint.save_checkpoint(state, newest)
    for later in checkpoint.list_checkpoints(run_dir):
        if later != newest:
            later.unlink()
    with pytest.raises(ConfigError, match=r"^'--data' cannot change on --resume of this run: its checkpoint "
                                          r"records no SHA-256 of its data to check '.*moved.npz' against"):
        main(["--resume", str(run_dir), "--data", "moved.npz", *RESUME])
    monkeypatch.chdir(start)  # from the folder it started in, its recorded path still finds the data
    assert main(["--resume", str(run_dir), "--epochs", "3", "--progress", "false", "--threads", "1"]) == 0


def test_a_resume_whose_networks_lack_a_weight_is_one_line(relative_run):
    """A checkpoint with every key but a network missing a tensor: one line naming the part, not
    torch's many-line load_state_dict traceback."""
    from training import checkpoint
    from training.errors import TrainingError
    from training.run import main

    _, run_dir = relative_run
    state, path = checkpoint.load_latest(run_dir)
    dropped = sorted(state["generator"])[0]
    del state["generator"][dropped]
    checkpoint.save_checkpoint(state, path)
    with pytest.raises(TrainingError) as caught:
        main(["--resume", str(run_dir), *RESUME])
    message = str(caught.value)
    assert message.startswith("cannot resume: the checkpoint's 'generator' does not fit the run's model: ")
    assert dropped in message and "\n" not in message
