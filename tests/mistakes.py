"""What every user-mistake test checks (tests/test_mistakes.py, tests/test_mistakes_training.py):
a command run as a user runs it ends with status 2 and one line on stderr naming the bad value,
never a traceback."""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest


def slow(arguments, names):
    """A mistake found only after a slow import, or a variant of one the quick loop covers: run in
    the full suite only (each case is a fresh interpreter)."""
    return pytest.param(arguments, names, marks=pytest.mark.slow, id=" ".join(arguments) or "nothing")


def cases(table):
    """pytest params, named by their arguments; slow() has made some already."""
    return [case if hasattr(case, "marks") else pytest.param(*case, id=" ".join(case[0]) or "nothing")
            for case in table]


def run(command, cwd, **env):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80", **env})


def run_selected(request, commands, cwd, **env):
    """Every case of the calling module's tests in `commands` (test name -> command for a case's
    arguments) that this session selected, run a few at a time: each is a fresh interpreter, most
    of it start-up, so a 2-core machine runs two at once. {tuple(command): CompletedProcess}."""
    wanted = [tuple(commands[item.originalname](item.callspec.params["arguments"]))
              for item in request.session.items
              if item.module is request.module and getattr(item, "originalname", None) in commands]
    with ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 1) + 1)) as pool:
        return dict(zip(wanted, pool.map(lambda command: run(list(command), cwd, **env), wanted)))


def check_one_line(done, names, prefix="", quiet=True):
    """quiet: nothing on stdout either (training's commands may say what they skipped before failing)."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(prefix) and names in lines[0], lines[0]
    assert done.stdout == "" or not quiet, done.stdout
