"""ganpack: sample and score small GANs exported as ONNX model packages.

    import ganpack
    model = ganpack.load()                 # the model inside ganpack, or ganpack.load("model/")
    digits = model.sample(64, seed=1)      # uint8 (64, 28, 28)
    ganpack.save_grid(digits, "digits.png")
    sevens = ganpack.load("conditional").sample(8, seed=1, label=7)   # a class-conditional package
"""

from ganpack.backends import BackendError, available_backends
from ganpack.errors import GanpackError, InputError, PackageError
from ganpack.grid import save_grid
from ganpack.model import Model, load
from ganpack.package import built_in_models

__version__ = "0.2.0"  # the one place: pyproject.toml reads it, export records it in each manifest

__all__ = ["BackendError", "GanpackError", "InputError", "Model", "PackageError", "__version__", "available_backends",
           "built_in_models", "load", "save_grid"]
