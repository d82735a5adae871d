"""The data a run trains on, from a name or a path, as one Dataset: the images, their labels
where the data has them, the class names, and a provenance record that holds no path.

`data` (the config key, `--data`) is one of
- "bundled": the 5,000 MNIST digits shipped in training/assets (the default);
- "mnist", "fashion-mnist", "kmnist": a standard 60,000-image training set of ten classes,
  downloaded once from a list of mirrors with every file's MD5 checked, or read from `data_dir`;
- a path to your own images:
  - an IDX images file, gzipped or not; its labels are read from the file beside it whose name
    has "labels-idx1" for "images-idx3" (train-images-idx3-ubyte.gz -> train-labels-idx1-ubyte.gz,
    either with or without .gz), and the data is unlabeled when there is none;
  - a .npy file holding one uint8 array (N, 28, 28);
  - a .npz file holding a uint8 array `images` (N, 28, 28) and optionally an integer array
    `labels` (N,); Keras's names `x_train` and `y_train` are read too;
  - a folder of PNG or JPEG images (training/image_folder.py: grayscale, resized to 28x28,
    labels from subfolder names).
Arrays are taken as they are or refused, never converted: uint8 pixels 0-255, shape (N, 28, 28).
Labels of your own data are integers 0..K-1 named "0".."K-1" (a folder's are its subfolder names).
Files are told apart by their content (NumPy's and zip's magic bytes), not by their suffix.
Importing this module does nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganpack.contract import IMAGE_SIDE
from training import mnist
from training.config import DATASETS, MAX_CLASSES  # labels of your own data must be below it
from training.errors import ConfigError, DataError
from training.image_folder import read_image_folder

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # a .npz is a zip of .npy files
IMAGE_MAGICS = (b"\x89PNG", b"\xff\xd8\xff")  # PNG, JPEG: one image given where a folder is wanted
NPZ_KEYS = (("images", "labels"), ("x_train", "y_train"))  # (images, labels) array names, first match wins


@dataclass(frozen=True)
class IdxSet:
    """A data set published as MNIST is: four gzipped IDX files, ten classes."""
    title: str  # torchvision's folder name for it: a torchvision root works as data_dir
    gz_md5: dict[str, str]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]


# The MD5s and class names are torchvision's (torchvision/datasets/mnist.py, classes FashionMNIST
# and KMNIST); its mirrors come first. Fashion-MNIST's files are also in the zalandoresearch/
# fashion-mnist repository under data/fashion/ (the same MD5s in its README). A mirror whose copy
# differs is rejected by the MD5 check and the next one tried.
IDX_SETS = {
    "fashion-mnist": IdxSet(
        title="FashionMNIST",
        gz_md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot")),
    "kmnist": IdxSet(  # Kuzushiji-MNIST: ten cursive hiragana, named by their romanization
        title="KMNIST",
        gz_md5={"train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
                "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
                "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
                "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134"},
        mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
}
DIGITS = tuple(str(digit) for digit in range(10))
DOWNLOADED = ("mnist", *IDX_SETS)  # the names data_dir and cache_dir are for


@dataclass
class Dataset:
    images: np.ndarray  # (N, 28, 28) uint8, N >= 1
    labels: np.ndarray | None  # (N,) int64 in 0..len(class_names)-1; None for unlabeled data
    class_names: list[str] | None  # None exactly when labels is None
    source: dict  # provenance, no path in it: see describe()


def describe(kind: str, name: str, images: np.ndarray, class_names: list[str] | None) -> dict:
    """The provenance record: what kind of source, its name (a data set's name, or a file's or
    folder's base name: never a path), how many images, the SHA-256 of their (N, 28, 28) uint8
    bytes in order, whether they are labeled, and the class names (or None)."""
    return {"kind": kind, "name": name, "images": len(images),
            "sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest(),
            "labeled": class_names is not None, "class_names": class_names}


def load_dataset(data: str, data_dir: str = "", cache_dir: str = "") -> Dataset:
    """The data named by the config's `data`, `data_dir` and `cache_dir` (empty: not given).

    Raises ConfigError for a name that is neither a data set nor an existing path, or a data_dir
    given for data it does not apply to; DataError, naming the file, for anything wrong in the data.
    """
    if data_dir and data not in DOWNLOADED:
        raise ConfigError(f"data_dir {data_dir!r} is only for the data sets {', '.join(DOWNLOADED)}, not {data!r}")
    if data == "bundled":
        images, labels = mnist.load_bundled()
        return _labeled("bundled", "bundled", images, labels, list(DIGITS))
    if data == "mnist":
        images, labels = mnist.load_mnist(data_dir=data_dir, cache_dir=cache_dir)
        return _labeled("mnist", "mnist", images, labels, list(DIGITS))
    if data in IDX_SETS:
        spec = IDX_SETS[data]
        # The four files have MNIST's names, so a shared cache_dir keeps each set in a subfolder.
        cache = Path(cache_dir).expanduser() / data if cache_dir else mnist.default_cache_dir(data)
        images, labels = mnist.load_idx_set(spec.gz_md5, spec.title, data_dir, cache, spec.mirrors)
        return _labeled(data, data, images, labels, list(spec.class_names))
    path = Path(data).expanduser()
    if not data or not path.exists():
        raise ConfigError(f"data {data!r} is neither a data set ({', '.join(DATASETS)}) nor a file or folder "
                          "that exists")
    return load_path(path)


def load_path(path: Path) -> Dataset:
    """Your own images: a folder, a .npy, a .npz or an IDX file (told apart by content)."""
    if path.is_dir():
        images, labels, class_names = read_image_folder(path)
        name = Path(os.path.abspath(path)).name or "folder"  # "." and "data/" have names too; links keep theirs
        return Dataset(images, labels, class_names, describe("folder", name, images, class_names))
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    if head.startswith(NPY_MAGIC):
        images, labels, kind = _check_images(_load_numpy(path), path, "the array"), None, "npy"
    elif head.startswith(ZIP_MAGIC):
        images, labels, kind = *_read_npz(path), "npz"
    elif path.suffix.lower() in (".npy", ".npz"):
        raise DataError(f"{path}: not a NumPy {path.suffix} file (it starts with {head!r})")
    elif head.startswith(IMAGE_MAGICS):
        raise DataError(f"{path}: a single image; give the folder that holds your images instead")
    else:
        images, labels, kind = *_read_idx(path), "idx"
    if labels is None:
        return Dataset(images, None, None, describe(kind, path.name, images, None))
    class_names = [str(label) for label in range(int(labels.max()) + 1)]
    return Dataset(images, labels, class_names, describe(kind, path.name, images, class_names))


def _labeled(kind: str, name: str, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> Dataset:
    return Dataset(images, labels.astype(np.int64), class_names, describe(kind, name, images, class_names))


# ---------------------------------------------------------------------------- your own files


def _load_numpy(path: Path, key: str = ""):
    """np.load without pickles (an object array could run code); errors name the file (and key)."""
    where = f"{path}" + (f" (array '{key}')" if key else "")
    try:
        if key:
            with np.load(path, allow_pickle=False) as archive:
                return archive[key]
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{where}: cannot read it ({' '.join(str(error).split())})") from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot read it as .npz ({' '.join(str(error).split())})") from None
    for images_key, labels_key in NPZ_KEYS:
        if images_key in keys:
            images = _check_images(_load_numpy(path, images_key), path, f"array '{images_key}'")
            if labels_key not in keys:
                return images, None
            labels = _check_labels(_load_numpy(path, labels_key), len(images), path, f"array '{labels_key}'")
            return images, labels
    wanted = " or ".join(f"'{images_key}'" for images_key, _ in NPZ_KEYS)
    raise DataError(f"{path}: no images array: want {wanted} (N, 28, 28) uint8; it holds {keys}")


def _read_idx(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    images = mnist.read_idx_images(path)
    labels_path = idx_labels_beside(path)
    if labels_path is None:
        return images, None
    return images, _check_labels(mnist.read_idx(labels_path), len(images), labels_path, "the labels")


def idx_labels_beside(images_path: Path) -> Path | None:
    """The labels file named like `images_path` with labels-idx1 for images-idx3 (or a dot for the
    hyphen, as some copies have it), with or without .gz; None when there is none."""
    name = re.sub(r"images([-.])idx3", r"labels\1idx1", images_path.name)
    if name == images_path.name:
        return None
    stem = name.removesuffix(".gz")
    for candidate in (images_path.with_name(stem + ".gz"), images_path.with_name(stem)):
        if candidate.is_file():
            return candidate
    return None


def _check_images(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise DataError(f"{path}: {what} has dtype {array.dtype}, want uint8 (pixels 0 to 255; for floats in "
                        "[0, 1] convert with (x * 255).round().astype(np.uint8))")
    if array.ndim != 3 or array.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or not len(array):
        raise DataError(f"{path}: {what} has shape {array.shape}, want (N, 28, 28) with N >= 1")
    return np.ascontiguousarray(array)


def _check_labels(labels: np.ndarray, count: int, path: Path, what: str) -> np.ndarray:
    """Integer labels (N,) in 0..MAX_CLASSES-1, as int64."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {what} has dtype {labels.dtype}, want integers (class 0, 1, ...)")
    if labels.ndim != 1 or len(labels) != count:
        raise DataError(f"{path}: {what} has shape {labels.shape}, want ({count},): one label per image")
    bad = np.flatnonzero((labels < 0) | (labels >= MAX_CLASSES))
    if bad.size:
        raise DataError(f"{path}: {what} holds {bad.size} labels outside 0 to {MAX_CLASSES - 1}; first is "
                        f"{labels[bad[0]]} at index {bad[0]}")
    return labels.astype(np.int64)


# ---------------------------------------------------------------------------- resume


def recorded_source(state: dict | None) -> dict | None:
    """The data source a checkpoint records, or None (a new run, or a checkpoint written before
    sources were recorded)."""
    recorded = (state or {}).get("data_source")
    return recorded if isinstance(recorded, dict) and isinstance(recorded.get("sha256"), str) else None


def check_resumed_data(source: dict, state: dict | None) -> None:
    """A resumed run must see the images its checkpoint was trained on, labeled as they were,
    wherever the data now lies (a checkpoint without a source record has nothing to compare)."""
    recorded = recorded_source(state)
    if recorded is None:
        return
    if recorded["sha256"] != source["sha256"]:
        raise DataError(f"the data '{source['name']}' ({source['images']} images, SHA-256 {source['sha256'][:12]}...) "
                        f"is not what this run was trained on ('{recorded['name']}', {recorded['images']} images, "
                        f"SHA-256 {recorded['sha256'][:12]}...)")
    for key in ("labeled", "class_names"):
        if key in recorded and recorded[key] != source[key]:
            raise DataError(f"the data '{source['name']}' holds this run's images, but its {key} is "
                            f"{source[key]!r}, not {recorded[key]!r} as when the run was trained")
