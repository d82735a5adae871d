"""Package archives: only known, plain, bounded members are extracted; the rest is verified as a folder."""

import zipfile

import pytest

import ganpack
from ganpack.archive import write_archive
from ganpack.errors import PackageError
from packages import make_package


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path, _, _ = make_package(tmp_path_factory.mktemp("pkg") / "model")
    return path


def rezip(package, target, rename=None, extra=None, tamper=None):
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(package.iterdir()):
            data = path.read_bytes()
            if tamper == path.name:
                data = data[:-10] + bytes(10)
            archive.writestr((rename or {}).get(path.name, path.name), data)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return target


def test_archive_round_trip(package, tmp_path):
    archive = write_archive(package, tmp_path / "m.zip")
    model = ganpack.load(archive, backend="numpy")
    assert model.sample(3, seed=0).shape == (3, 28, 28) and model.path == archive


@pytest.mark.parametrize("kwargs, message", [
    ({"rename": {"generator.onnx": "../generator.onnx"}}, "unexpected member"),
    ({"rename": {"generator.onnx": "/abs/generator.onnx"}}, "unexpected member"),
    ({"extra": {"payload.py": b"print('hi')"}}, "unexpected member 'payload.py'"),
    ({"tamper": "generator.onnx"}, "generator.onnx: SHA-256"),
])
def test_bad_archives_are_refused(package, tmp_path, kwargs, message):
    with pytest.raises(PackageError, match=message):
        ganpack.load(rezip(package, tmp_path / "bad.zip", **kwargs))


def test_truncated_archive_is_refused(package, tmp_path):
    archive = write_archive(package, tmp_path / "m.zip")
    data = archive.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError, match="not a model package archive"):
        ganpack.load(cut)
