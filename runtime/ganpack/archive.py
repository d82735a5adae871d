"""The single-file form of a model package: a zip of the package's files and nothing else,
either flat (what write_archive writes) or all inside one top-level folder (what
`zip -r model.zip model/` writes).

Opening one extracts it, after checks, into a private temporary folder that lives as long as
the returned handle; the folder is then verified like any package (manifest, checksums). Only
the fixed file names are ever written there: no name read from the archive becomes a path.
"""

import os
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

from ganpack.atomic import replacing
from ganpack.contract import PACKAGE_FILES
from ganpack.errors import PackageError
from ganpack.package import MAX_GRAPH_BYTES

ALLOWED = set(PACKAGE_FILES)
PathLike = str | os.PathLike[str]


def is_archive(path: PathLike) -> bool:
    return Path(path).is_file() and zipfile.is_zipfile(path)


def write_archive(package_dir: PathLike, archive_path: PathLike) -> Path:
    """Zip a package folder's files into archive_path: written under a partial name of its own
    beside it, then renamed into place (ganpack/atomic.py), so two writers of one archive race
    safely and an interrupted write leaves the old archive, if any, as it was."""
    package_dir, archive_path = Path(package_dir), Path(archive_path)
    with replacing(archive_path) as file:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(package_dir.iterdir()):
                if path.name in ALLOWED:
                    archive.write(path, arcname=path.name)
    return archive_path


def extract_archive(archive_path: PathLike) -> tempfile.TemporaryDirectory[str]:
    """Check every member (a known name, a regular file, a bounded size) and extract into a temporary folder."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise PackageError(f"{archive_path}: not a readable package archive: {error}") from None
    folder = tempfile.TemporaryDirectory(prefix="ganpack-")
    try:
        with archive:
            for name, info in _package_members(archive, archive_path).items():
                with archive.open(info) as source:
                    data = source.read(MAX_GRAPH_BYTES + 1)  # the declared size can lie; never read past the bound
                if len(data) > MAX_GRAPH_BYTES:
                    raise PackageError(f"{archive_path}: member {info.filename} is larger than it declares")
                (Path(folder.name) / name).write_bytes(data)  # a fixed name, never the member's own
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as error:
        folder.cleanup()  # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        raise PackageError(f"{archive_path}: corrupt or unreadable archive: {error}") from None
    except BaseException:
        folder.cleanup()
        raise
    return folder


def _package_members(archive: zipfile.ZipFile, archive_path: PathLike) -> dict[str, zipfile.ZipInfo]:
    """{package file name: member}. The members are the package's files, either all flat or all
    inside one top-level folder (whose own directory entry may be listed too); nothing else."""
    infos = archive.infolist()
    first_file = next((info.filename for info in infos if not info.is_dir()), "")
    top = first_file.split("/", 1)[0] if "/" in first_file else ""
    prefix = f"{top}/" if top not in ("", ".", "..") and "\\" not in top else ""
    members = {}
    for info in infos:
        name = info.filename[len(prefix):] if info.filename.startswith(prefix) else None
        if info.is_dir() and info.filename == prefix and prefix:
            continue  # the top-level folder's own entry
        if name not in ALLOWED or info.is_dir():
            raise PackageError(f"{archive_path}: unexpected member {info.filename!r}; a package archive holds "
                               f"only {sorted(ALLOWED)}, flat or inside one top-level folder")
        if name in members:
            raise PackageError(f"{archive_path}: member {name} appears twice")
        if stat.S_ISLNK(info.external_attr >> 16):  # zip -y stores a link as a member holding its target
            raise PackageError(f"{archive_path}: member {info.filename} is a symbolic link, not a file")
        if info.file_size > MAX_GRAPH_BYTES:
            raise PackageError(f"{archive_path}: member {info.filename} declares {info.file_size} bytes, "
                               "more than any ganpack package file")
        members[name] = info
    return members
