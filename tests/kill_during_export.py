"""Run `python -m export`, but SIGKILL this process at step K of putting the package in place.

    python tests/kill_during_export.py K SOURCE --out DEST [--overwrite]

The steps are the renames and removals of DEST's own folders (DEST, its staging folder, the old
package moved aside), counted from 1 as export/package.py makes them. A rename is killed before it
(a rename is atomic, so "after step k" is "before step k + 1"); a removal is killed midway, with one
file of the folder gone: the states a kill or a power cut can leave on disk.
"""

import os
import shutil
import signal
import sys
from pathlib import Path

from export.__main__ import main
from ganpack.errors import run_command

KILL_AT = int(sys.argv[1])
DEST = Path(sys.argv[sys.argv.index("--out") + 1]).name
real_rename, real_rmtree = os.rename, shutil.rmtree
steps = 0


def is_step(*paths) -> bool:
    """A call on DEST or one of its hidden companions (.DEST.XXXXXXXX.partial, .DEST.replaced)."""
    global steps
    if any(Path(path).name == DEST or Path(path).name.startswith(f".{DEST}.") for path in paths):
        steps += 1
        return steps == KILL_AT
    return False


def rename_or_die(source, target, *args, **kwargs):
    if is_step(source, target):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_rename(source, target, *args, **kwargs)


def rmtree_or_die(path, *args, **kwargs):
    if is_step(path):
        first = next((file for file in sorted(Path(path).rglob("*")) if file.is_file()), None)
        if first is not None:
            first.unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_rmtree(path, *args, **kwargs)


os.rename, shutil.rmtree = rename_or_die, rmtree_or_die
run_command(main, sys.argv[2:])
