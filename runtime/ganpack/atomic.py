"""Write a file whole or not at all: under a unique hidden name beside it, then renamed into place.

Each write gets its own partial file, `.NAME.XXXXXXXX.partial` (8 random characters, as tempfile's),
so two processes or threads writing the same target never truncate or rename each other's bytes;
os.replace is atomic, so the target is always one writer's complete file (the last to finish).
The partial file is created as open() creates a file, mode 0o666 less the umask (tempfile.mkstemp's
0o600 would make the finished file private). A write that fails or is interrupted removes its
partial file; only a process killed outright (SIGKILL, power loss) can leave one behind.
"""

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ganpack.errors import InputError

PARTIAL_SUFFIX = ".partial"


def writable_file(out: str | os.PathLike[str], example: str) -> Path:
    """`out` checked as a file to write, before any work is done: a name, not a folder, nor a device,
    FIFO, socket or symbolic link (the rename would replace it, /dev/null included), in a folder that
    exists and is writable; else InputError naming it (`example`: a file name to suggest in a folder)."""
    if not os.fspath(out):
        raise InputError(f"output is an empty name; name a file, such as '{example}'")
    path = Path(out)
    if path.is_symlink():  # checked before is_dir, which follows it
        raise InputError(f"output '{out}' is a symbolic link; name a regular file (ganpack replaces the file "
                         "it writes, and would replace the link)")
    if path.is_dir():
        raise InputError(f"output '{out}' is a folder; name a file in it, such as '{path / example}'")
    if path.exists() and not stat.S_ISREG(path.lstat().st_mode):
        raise InputError(f"output '{out}' exists and is not a regular file (a device, FIFO or socket); "
                         "name a new file or a regular one")
    folder = path.parent
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"output folder '{folder}' {state} (for '{out}')")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder '{folder}' is not writable (for '{out}')")
    return path


def partial_name(path: Path) -> Path:
    """A fresh name for a partial file of `path`, in the same folder (so the rename is atomic)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a new partial file beside `path`, open for binary writing. On a clean exit it is
    flushed, fsynced and renamed to `path`; on any exception (Ctrl-C too) it is removed."""
    target = Path(path)
    while True:
        partial = partial_name(target)
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # 2**32 names: another writer drew this one; draw again
            continue
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
