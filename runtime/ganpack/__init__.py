"""ganpack: sample and score small GANs exported as ONNX model packages."""

from ganpack.errors import ConfigError, DataError, ExportError, GanpackError, PackageError, TrainingError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "ExportError", "GanpackError", "PackageError", "TrainingError",
           "__version__"]
