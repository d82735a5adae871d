"""The runtime's exception types: the errors the ganpack wheel raises.

Each error names the offending value or file, so a user can act on it without a traceback.
Training and export define their own (training/errors.py, export/errors.py), as subclasses of
GanpackError, so run_command reports theirs in one line too.
"""

import argparse
from collections.abc import Callable
from typing import NoReturn


class GanpackError(Exception):
    """Base class: catch this to catch every error ganpack raises on purpose."""


class PackageError(GanpackError):
    """A model package that is incomplete, corrupt or tampered with (a checksum mismatch)."""


class InputError(GanpackError, ValueError):
    """An argument of the wrong shape, type or value (NaN latents, n < 0, ...)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a mistake is one line and status 2: argparse's own prints the usage
    too. The `ganpack` command and the benchmark scripts parse with it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def run_command(main: Callable[[list[str]], int], argv: list[str]) -> None:
    """Exit with main(argv)'s status; a GanpackError becomes one line on stderr and status 2,
    since a user needs the message, not a traceback."""
    import sys

    try:
        status = main(argv)
    except GanpackError as error:
        print(f"error: {error}", file=sys.stderr)
        status = 2
    except BrokenPipeError:  # `ganpack info | head`: the reader left, which is not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    sys.exit(status)


def counted(n: int, noun: str) -> str:
    """A count in a command's message: '1 image', '64 images'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
