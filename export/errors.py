"""Export's exception type. GanpackError is its base, so run_command reports it in one line
with exit status 2."""

from ganpack.errors import GanpackError


class ExportError(GanpackError):
    """A model package could not be written or failed its checks at export time."""
