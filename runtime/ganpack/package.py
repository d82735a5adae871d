"""Open a model package folder: read its manifest and verify every file against its checksum."""

import hashlib
import os
from pathlib import Path

from ganpack.contract import NETWORK_FILES
from ganpack.errors import PackageError
from ganpack.manifest import Manifest, read_manifest

MAX_GRAPH_BYTES = 256 << 20  # far above any dense GAN we export; refuses absurd files early


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
