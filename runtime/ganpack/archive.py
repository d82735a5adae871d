"""The single-file form of a model package: a zip of the package's files, flat, nothing else.

Opening one extracts it, after checks, into a private temporary folder that lives as long as
the returned handle; the folder is then verified like any package (manifest, checksums).
"""

import tempfile
import zipfile
from pathlib import Path

from ganpack.errors import PackageError
from ganpack.package import MAX_GRAPH_BYTES

ALLOWED = {"manifest.json", "generator.onnx", "discriminator.onnx", "preview.png"}


def is_archive(path) -> bool:
    return Path(path).is_file() and zipfile.is_zipfile(path)


def write_archive(package_dir, archive_path) -> Path:
    """Zip a package folder's files into archive_path (written beside, then renamed into place)."""
    package_dir, archive_path = Path(package_dir), Path(archive_path)
    partial = archive_path.with_name(archive_path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(package_dir.iterdir()):
                if path.name in ALLOWED:
                    archive.write(path, arcname=path.name)
        partial.replace(archive_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return archive_path


def extract_archive(archive_path) -> tempfile.TemporaryDirectory:
    """Check every member (a plain, known name; a bounded size) and extract into a temporary folder."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise PackageError(f"{archive_path}: not a readable package archive: {error}") from None
    folder = tempfile.TemporaryDirectory(prefix="ganpack-")
    with archive:
        names = [info.filename for info in archive.infolist()]
        for info in archive.infolist():
            if info.filename not in ALLOWED or info.is_dir():
                folder.cleanup()
                raise PackageError(f"{archive_path}: unexpected member {info.filename!r}; a package archive "
                                   f"holds only {sorted(ALLOWED)}")
            if info.file_size > MAX_GRAPH_BYTES:
                folder.cleanup()
                raise PackageError(f"{archive_path}: member {info.filename} declares {info.file_size} bytes, "
                                   "more than any ganpack package file")
        if len(set(names)) != len(names):
            folder.cleanup()
            raise PackageError(f"{archive_path}: a member name appears twice")
        try:
            for info in archive.infolist():
                with archive.open(info) as source:
                    data = source.read(MAX_GRAPH_BYTES + 1)  # the declared size can lie; never read past the bound
                if len(data) > MAX_GRAPH_BYTES:
                    raise PackageError(f"{archive_path}: member {info.filename} is larger than it declares")
                (Path(folder.name) / info.filename).write_bytes(data)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            folder.cleanup()
            raise PackageError(f"{archive_path}: corrupt archive: {error}") from None
        except PackageError:
            folder.cleanup()
            raise
    return folder
