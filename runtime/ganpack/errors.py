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
