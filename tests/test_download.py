"""Tests for training/download.py against HTTP servers on 127.0.0.1 only: no real network."""

import functools
import gzip
import hashlib
import http.server
import socket
import threading
import types

import pytest

from training.download import download_file, file_digest
from training.errors import DataError

NAME = "train-labels-idx1-ubyte.gz"
GOOD = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03" + bytes([1, 2, 3]), mtime=0)
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()
CORRUPT = GOOD[:-1] + bytes([GOOD[-1] ^ 0xFF])


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from `directory` and records each requested path on the server."""

    def do_GET(self):
        self.server.requested_paths.append(self.path)
        super().do_GET()

    def log_message(self, format, *args):  # keep test output clean
        pass


@pytest.fixture
def mirrors(tmp_path, monkeypatch):
    """A local server with mirrors good/, corrupt/ and missing/ (404), shut down afterwards."""
    monkeypatch.setenv("no_proxy", "*")  # a proxy from the environment must not see 127.0.0.1
    root = tmp_path / "served"
    for folder, content in (("good", GOOD), ("corrupt", CORRUPT)):
        (root / folder).mkdir(parents=True)
        (root / folder / NAME).write_bytes(content)
    (root / "missing").mkdir()
    handler = functools.partial(RecordingHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requested_paths = []
    # A short poll lets shutdown() return quickly.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    yield types.SimpleNamespace(
        good=base + "good/",
        corrupt=base + "corrupt/",
        missing=base + "missing/",
        requested_paths=server.requested_paths,
    )
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "cache" / "mnist"  # does not exist yet: download_file creates it


def leftovers(folder):
    """Everything in the folder except the final file: temporary .part files must not remain."""
    return sorted(path.name for path in folder.iterdir() if path.name != NAME)


def test_good_download(mirrors, dest):
    path = download_file(NAME, GOOD_MD5, dest, [mirrors.good], timeout=5)
    assert path == dest / NAME and path.read_bytes() == GOOD
    assert leftovers(dest) == []


def test_corrupt_first_mirror_falls_back_to_second(mirrors, dest):
    path = download_file(NAME, GOOD_MD5, dest, [mirrors.corrupt, mirrors.good], timeout=5)
    assert path.read_bytes() == GOOD
    assert mirrors.requested_paths == [f"/corrupt/{NAME}", f"/good/{NAME}"]
    assert leftovers(dest) == []


def test_404_mirror_falls_back(mirrors, dest):
    path = download_file(NAME, GOOD_MD5, dest, [mirrors.missing, mirrors.good], timeout=5)
    assert path.read_bytes() == GOOD


def test_all_mirrors_bad_names_file_and_every_failure(mirrors, dest):
    with pytest.raises(DataError) as raised:
        download_file(NAME, GOOD_MD5, dest, [mirrors.corrupt, mirrors.missing], timeout=5)
    message = str(raised.value)
    assert NAME in message
    assert f"{mirrors.corrupt}{NAME}: MD5" in message
    assert f"{mirrors.missing}{NAME}: HTTP 404" in message
    assert not (dest / NAME).exists() and leftovers(dest) == []


def test_cached_file_is_not_fetched_again(mirrors, dest):
    download_file(NAME, GOOD_MD5, dest, [mirrors.good], timeout=5)
    download_file(NAME, GOOD_MD5, dest, [mirrors.good], timeout=5)
    assert mirrors.requested_paths == [f"/good/{NAME}"]


def test_cached_file_with_wrong_md5_is_fetched_again(mirrors, dest):
    dest.mkdir(parents=True)
    (dest / NAME).write_bytes(CORRUPT)
    path = download_file(NAME, GOOD_MD5, dest, [mirrors.good], timeout=5)
    assert path.read_bytes() == GOOD and len(mirrors.requested_paths) == 1


def test_wrong_cached_file_is_removed_even_when_all_mirrors_fail(mirrors, dest):
    dest.mkdir(parents=True)
    (dest / NAME).write_bytes(CORRUPT)
    with pytest.raises(DataError):
        download_file(NAME, GOOD_MD5, dest, [mirrors.missing], timeout=5)
    assert not (dest / NAME).exists()


def test_refused_connection_falls_back(mirrors, dest):
    with socket.socket() as probe:  # a port that was just free: nothing listens there now
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead_mirror = f"http://127.0.0.1:{closed_port}/"
    path = download_file(NAME, GOOD_MD5, dest, [dead_mirror, mirrors.good], timeout=5)
    assert path.read_bytes() == GOOD


def test_silent_server_times_out_instead_of_hanging(mirrors, dest):
    # Listens (so connect succeeds) but never answers: only the timeout gets us past it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        silent_mirror = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DataError, match="timed out"):
            download_file(NAME, GOOD_MD5, dest, [silent_mirror], timeout=0.3)


def test_file_digest_matches_hashlib(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(GOOD * 1000)
    assert file_digest(path) == hashlib.md5(GOOD * 1000).hexdigest()
    assert file_digest(path, "sha256") == hashlib.sha256(GOOD * 1000).hexdigest()
