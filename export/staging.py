"""Where an export writes: the destination check, and the staging folder beside it.

A package is built in `.NAME.XXXXXXXX.partial` (tempfile.mkdtemp's 8 random characters) beside
the destination NAME, then renamed into place. An export that is killed (SIGKILL, power loss)
cannot remove its staging folder, so every export first removes the stale ones of its destination.

Stale means that no export holds the folder's lock. An export takes an exclusive flock on its
staging folder as soon as it creates it and keeps it until it ends; the kernel drops a flock when
its process dies, however it dies. So the lock answers "is that export still running?" exactly:
no pid (reused, and meaningless to another host sharing the folder) and no guess at how long an
export may take. Two gaps are closed by age:
- between mkdtemp and flock there is an instant without the lock: a folder changed in the last
  GRACE_S seconds is never touched (its lock is not even tried);
- where flock is not supported (some network file systems, non-POSIX systems), a folder is stale
  only when nothing in it changed for NO_LOCKS_STALE_S.

Replacing a package takes two renames (a folder cannot be renamed over a full one): the old package
to `.NAME.replaced`, then the new one to NAME. The export locks the old package before the first and
keeps the lock until it has removed it. A kill between the two leaves no NAME; the next export to
NAME puts the old package back before anything else (recover_replaced), or removes it once the new
one is in place.
"""

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from export.errors import ExportError
from ganpack.contract import MANIFEST_FILE

try:
    import fcntl
except ImportError:  # not POSIX: no locks, age alone decides
    fcntl = None  # type: ignore[assignment]

GRACE_S = 60.0
NO_LOCKS_STALE_S = 24 * 3600.0


def check_replaceable(out_dir: Path) -> None:
    """--overwrite replaces a model package, never another file or folder a typo named."""
    if out_dir.suffix == ".zip":
        if not out_dir.is_file():
            raise ExportError(f"'{out_dir}' is a folder, not a package archive; not replacing it")
    elif not out_dir.is_dir():
        raise ExportError(f"'{out_dir}' is a file, not a model package; not replacing it")
    elif any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).is_file():
        raise ExportError(f"'{out_dir}' is not a model package (no {MANIFEST_FILE}); not replacing it")


def new_staging(out_dir: Path, log=print) -> tuple[Path, int | None]:
    """Remove out_dir's stale staging folders, then make and lock a fresh one. Returns it and the
    descriptor holding its lock (None without locks): pass that to release() when done."""
    for stale in remove_stale_staging(out_dir):
        log(f"removed '{stale}', the staging folder of an export that did not finish")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    except (FileExistsError, NotADirectoryError):
        raise ExportError(f"cannot write '{out_dir}': a file is in the way of its folder '{out_dir.parent}'") from None
    except OSError as error:
        raise ExportError(f"cannot write '{out_dir}': {error.strerror or error}") from None
    if fcntl is None:
        return staging, None
    descriptor = os.open(staging, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # no locks on this file system: the folder is then judged by its age
        pass
    return staging, descriptor


def release(descriptor: int | None) -> None:
    if descriptor is not None:
        os.close(descriptor)  # drops the lock


def retired_path(out_dir: Path) -> Path:
    """Where a package being replaced waits while the new one is renamed into place."""
    return out_dir.with_name(f".{out_dir.name}.replaced")


def lock_folder(folder: Path) -> tuple[bool, int | None]:
    """(free, descriptor): False when another process holds `folder`'s lock; else the descriptor
    holding ours, which moves with the folder when it is renamed (None without locks). OSError
    when the folder cannot be opened."""
    if fcntl is None:
        return True, None
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return False, None
    except OSError:  # no locks on this file system: nothing to wait for
        pass
    return True, descriptor


def recover_replaced(out_dir: Path, log=print) -> None:
    """Finish what an export killed while replacing out_dir left: the old package at .NAME.replaced
    goes back to NAME when nothing took its place, and is removed when the new one did. One that a
    running export holds (it is between its renames) is left to it."""
    retired = retired_path(out_dir)
    if not retired.is_dir() or retired.is_symlink():
        return
    try:
        free, descriptor = lock_folder(retired)
    except OSError:  # gone meanwhile, or not readable: nothing this export can do with it
        return
    if not free:
        return
    try:
        if out_dir.exists() or out_dir.is_symlink():
            shutil.rmtree(retired, ignore_errors=True)
            log(f"removed '{retired}', the package an earlier export replaced")
        else:
            os.rename(retired, out_dir)
            log(f"restored '{out_dir}' from '{retired}', where an export killed while replacing it had left it")
    finally:
        release(descriptor)


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Delete the staging folders of out_dir that no running export holds; returns them."""
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.[a-z0-9_]{{8}}\.partial")
    try:
        candidates = [path for path in out_dir.parent.iterdir() if pattern.fullmatch(path.name)]
    except OSError:  # no parent folder yet, or not readable: nothing to clean
        return []
    removed = []
    for path in sorted(candidates):
        if path.is_dir() and not path.is_symlink() and _remove_if_stale(path):
            removed.append(path)
    return removed


def _remove_if_stale(staging: Path) -> bool:
    try:
        age = time.time() - staging.stat().st_mtime
    except OSError:
        return False
    if age < GRACE_S:
        return False
    if fcntl is None:
        return _remove_if_old(staging, age)
    try:
        descriptor = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # a running export holds it
        return False
    except OSError:  # no locks on this file system
        return _remove_if_old(staging, age)
    else:
        shutil.rmtree(staging, ignore_errors=True)  # while holding the lock: no export can take it
        return True
    finally:
        os.close(descriptor)


def _remove_if_old(staging: Path, age: float) -> bool:
    if age < NO_LOCKS_STALE_S:
        return False
    shutil.rmtree(staging, ignore_errors=True)
    return True
