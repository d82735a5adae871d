"""Exception types shared by every part of ganpack.

Each error names the offending value or file, so a user can act on it without a traceback.
"""


class GanpackError(Exception):
    """Base class: catch this to catch every error ganpack raises on purpose."""


class ConfigError(GanpackError, ValueError):
    """An unknown, ill-typed or out-of-range configuration value."""


class DataError(GanpackError):
    """A data file that is missing, truncated, corrupt or fails its checksum."""


class TrainingError(GanpackError):
    """Training cannot go on (a NaN loss, an unusable run folder, a bad checkpoint)."""


class ExportError(GanpackError):
    """A model package could not be written or failed its checks at export time."""


class PackageError(GanpackError):
    """A model package that is incomplete, corrupt or tampered with (a checksum mismatch)."""


class InputError(GanpackError, ValueError):
    """An argument of the wrong shape, type or value (NaN latents, n < 0, ...)."""


def run_command(main, argv: list) -> None:
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
