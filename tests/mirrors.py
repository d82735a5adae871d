"""Two download mirrors of the same files on 127.0.0.1, for the download tests: good/ serves them
as given, corrupt/ with one byte flipped (so a checksum must catch it)."""

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def served_mirrors(folder: Path, files: dict[str, bytes], flip_at: int) -> Iterator[tuple[str, str]]:
    """Serve `files` (name -> bytes) from folder/good and, with byte `flip_at` flipped, from
    folder/corrupt; yields the two mirrors' URLs, then stops the server."""
    for mirror in ("good", "corrupt"):
        (folder / mirror).mkdir(parents=True)
        for name, payload in files.items():
            damaged = payload[:flip_at] + bytes([payload[flip_at] ^ 0xFF]) + payload[flip_at + 1:]
            (folder / mirror / name).write_bytes(payload if mirror == "good" else damaged)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        yield base + "good/", base + "corrupt/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
