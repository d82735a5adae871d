"""Training's exception types. GanpackError is their base, so run_command (which every
command's entry point uses) reports them in one line with exit status 2."""

from ganpack.errors import GanpackError


class ConfigError(GanpackError, ValueError):
    """An unknown, ill-typed or out-of-range configuration value."""


class DataError(GanpackError):
    """A data file that is missing, truncated, corrupt or fails its checksum."""


class TrainingError(GanpackError):
    """Training cannot go on (a NaN loss, an unusable run folder, a bad checkpoint)."""
