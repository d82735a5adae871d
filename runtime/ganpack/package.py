"""Find a model package (a path, or the name of one inside ganpack), read its manifest and
verify every file against its checksum."""

import hashlib
import os
from pathlib import Path
from typing import TypeGuard

from ganpack.contract import MANIFEST_FILE, NETWORK_FILES
from ganpack.errors import PackageError
from ganpack.manifest import Manifest, read_manifest

MAX_GRAPH_BYTES = 256 << 20  # far above any dense GAN we export; refuses absurd files early
BUILT_IN = Path(__file__).resolve().parent / "models"  # the packages inside ganpack, one folder each
DEFAULT_NAME = "default"


def built_in_models() -> list[str]:
    """The names of the packages inside ganpack: "default", and "conditional" in a wheel that ships it."""
    if not BUILT_IN.is_dir():
        return []
    return sorted(entry.name for entry in BUILT_IN.iterdir() if (entry / MANIFEST_FILE).is_file())


def is_built_in_name(path: object) -> TypeGuard[str]:
    """A str that can only be a built-in model's name: no path separator, and no such file or folder
    here (an existing path always wins)."""
    return (isinstance(path, str) and path not in ("", ".", "..") and "/" not in path and os.sep not in path
            and (os.altsep is None or os.altsep not in path) and not os.path.lexists(path))


def built_in_path(name: str) -> Path:
    """The folder of the built-in package `name`; a PackageError listing the built-in names otherwise.
    Only names found in the models folder become paths: the argument itself never does."""
    names = built_in_models()
    if name not in names:
        raise PackageError(f"'{name}' is neither a model package (no such file or folder) nor the name of one "
                           f"inside ganpack ({', '.join(names) or 'none'})")
    return BUILT_IN / names[names.index(name)]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_package(package_dir: str | os.PathLike[str]) -> Manifest:
    """The manifest, once both ONNX files exist, are regular files inside the package and match
    their SHA-256; otherwise a PackageError naming the file."""
    root = Path(package_dir)
    if not root.is_dir():
        raise PackageError(f"model package '{root}' is not a folder")
    manifest = read_manifest(root)
    for name, file_name in NETWORK_FILES.items():
        network = getattr(manifest, name)
        path = root / file_name  # the format's fixed name, never a string from the manifest
        if path.is_symlink() or not path.is_file():
            raise PackageError(f"{path}: missing from the package (or not a regular file)")
        if path.stat().st_size > MAX_GRAPH_BYTES:
            raise PackageError(f"{path}: {path.stat().st_size} bytes is larger than any ganpack graph")
        actual = sha256_of(path)
        if actual != network.sha256:
            raise PackageError(f"{path}: SHA-256 is {actual}, the manifest says {network.sha256}; "
                               "the file is corrupt or was changed after export")
    return manifest
