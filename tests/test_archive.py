"""Package archives: only known, plain, bounded members are extracted; the rest is verified as a folder."""

import shutil
import stat
import subprocess
import zipfile

import pytest

import ganpack
from at_once import run_at_once
from ganpack.archive import write_archive
from ganpack.errors import PackageError
from packages import make_package


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path, _, _ = make_package(tmp_path_factory.mktemp("pkg") / "model")
    return path


def rezip(package, target, rename=None, extra=None, tamper=None, prefix="", folder_entry=False):
    with zipfile.ZipFile(target, "w") as archive:
        if folder_entry:
            archive.writestr(zipfile.ZipInfo(prefix), b"")
        for path in sorted(package.iterdir()):
            data = path.read_bytes()
            if tamper == path.name:
                data = data[:-10] + bytes(10)
            archive.writestr(prefix + (rename or {}).get(path.name, path.name), data)
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


@pytest.mark.parametrize("prefix, folder_entry", [("", False), ("model/", False), ("model/", True),
                                                   ("my model v2/", True)])
def test_flat_or_one_top_level_folder(package, tmp_path, prefix, folder_entry):
    """`zip -r model.zip model/` puts the files under one folder: read the same as a flat archive."""
    archive = rezip(package, tmp_path / "m.zip", prefix=prefix, folder_entry=folder_entry)
    expected = ganpack.load(package, backend="numpy").sample(3, seed=1)
    assert (ganpack.load(archive, backend="numpy").sample(3, seed=1) == expected).all()


@pytest.mark.skipif(shutil.which("zip") is None, reason="the zip tool is not installed")
@pytest.mark.parametrize("what", ["model/", "model", "."])
def test_archives_the_zip_tool_makes(package, tmp_path, what):
    copy = tmp_path / "model"
    shutil.copytree(package, copy)
    cwd = copy if what == "." else tmp_path
    subprocess.run(["zip", "-qr", str(tmp_path / "m.zip"), what], cwd=cwd, check=True)
    assert ganpack.load(tmp_path / "m.zip", backend="numpy").sample(2, seed=0).shape == (2, 28, 28)


@pytest.mark.parametrize("kwargs, message", [
    ({"prefix": "model/", "extra": {"model/notes.txt": b"hi"}}, "unexpected member 'model/notes.txt'"),
    ({"prefix": "model/", "extra": {"other/manifest.json": b"{}"}}, "unexpected member 'other/manifest.json'"),
    ({"prefix": "model/", "extra": {"manifest.json": b"{}"}}, "unexpected member 'manifest.json'"),
    pytest.param({"prefix": "model/", "extra": {"model/manifest.json": b"{}"}}, "manifest.json appears twice",
                 marks=pytest.mark.filterwarnings("ignore:Duplicate name")),
    ({"prefix": "model/", "extra": {"model/sub/": b""}}, "unexpected member 'model/sub/'"),
    ({"prefix": "a/b/"}, "unexpected member 'a/b/discriminator.onnx'"),
    ({"prefix": "../"}, "unexpected member '../discriminator.onnx'"),
    ({"prefix": "./"}, "unexpected member './discriminator.onnx'"),
    ({"prefix": "model/", "extra": {"__MACOSX/model/._manifest.json": b""}}, "unexpected member '__MACOSX/"),
])
def test_anything_but_one_folder_of_package_files_is_refused(package, tmp_path, kwargs, message):
    with pytest.raises(PackageError, match=message):
        ganpack.load(rezip(package, tmp_path / "bad.zip", **kwargs))


def test_a_symbolic_link_member_is_refused(package, tmp_path):
    target = tmp_path / "link.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(package.iterdir()):
            if path.name != "preview.png":
                archive.writestr(path.name, path.read_bytes())
        link = zipfile.ZipInfo("preview.png")  # what `zip -y` stores for a link: its target, mode S_IFLNK
        link.create_system = 3  # unix: the high 16 bits of external_attr are st_mode
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(PackageError, match="member preview.png is a symbolic link"):
        ganpack.load(target)


@pytest.mark.skipif(shutil.which("zip") is None, reason="the zip tool is not installed")
def test_a_link_the_zip_tool_stores_is_refused(package, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(package, copy)
    (copy / "preview.png").unlink()
    (copy / "preview.png").symlink_to(copy / "manifest.json")
    subprocess.run(["zip", "-qry", str(tmp_path / "m.zip"), "model"], cwd=tmp_path, check=True)
    with pytest.raises(PackageError, match="member model/preview.png is a symbolic link"):
        ganpack.load(tmp_path / "m.zip")


def test_two_writers_of_one_archive_leave_one_whole_archive(package, tmp_path, monkeypatch):
    """Two exports to one .zip at once, each held after its first member until the other has begun
    too: each writes under a partial name of its own, so both finish, the archive is one of theirs,
    whole, and no partial file is left (a shared partial name mixed their bytes and lost a rename)."""
    import threading

    started = threading.Barrier(2, timeout=30)
    real_write = zipfile.ZipFile.write

    def write_then_wait(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        if threading.current_thread() is not threading.main_thread() and not getattr(self, "waited", False):
            self.waited = True
            started.wait()

    monkeypatch.setattr(zipfile.ZipFile, "write", write_then_wait)
    errors = run_at_once(*[lambda: write_archive(package, tmp_path / "m.zip")] * 2)
    monkeypatch.undo()
    assert errors == []
    assert [path.name for path in tmp_path.iterdir()] == ["m.zip"]
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        assert archive.testzip() is None
        assert {info.filename: archive.read(info) for info in archive.infolist()} == \
            {path.name: path.read_bytes() for path in package.iterdir() if path.name in ganpack.archive.ALLOWED}
    assert ganpack.load(tmp_path / "m.zip", backend="numpy").sample(2, seed=0).shape == (2, 28, 28)
