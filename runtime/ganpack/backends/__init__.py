"""Backends run a DenseStack on (batch, in) float32 rows; each returns
{"activated": (batch, out), "logits": (batch, out)} holding what the package's outputs need.

  c            our kernel (csrc/), through cffi; fused bias + activation, SIMD dispatch
  onnxruntime  an InferenceSession over the package's .onnx file (optional dependency)
  numpy        a pure-numpy reference: no compiler, no onnxruntime
"""

from ganpack.errors import GanpackError

PREFERENCE = ("c", "onnxruntime", "numpy")  # "auto" takes the first that is available


class BackendError(GanpackError):
    """A backend that is unknown, not installed, or failed while running."""


def available_backends() -> list[str]:
    names = []
    for name in PREFERENCE:
        try:
            backend_class(name)
        except BackendError:
            continue
        names.append(name)
    return names


def backend_class(name: str):
    """The class for `name`, importing it only when asked (onnxruntime and cffi are optional)."""
    if name == "numpy":
        from ganpack.backends.numpy_backend import NumpyBackend

        return NumpyBackend
    if name == "onnxruntime":
        try:
            from ganpack.backends.ort_backend import OnnxRuntimeBackend
        except ImportError:
            raise BackendError("backend 'onnxruntime' needs the onnxruntime package: "
                               "pip install 'ganpack[onnxruntime]'") from None
        return OnnxRuntimeBackend
    if name == "c":
        try:
            from ganpack.backends.c_backend import CBackend
        except ImportError as error:
            raise BackendError(f"backend 'c' is not available: the compiled kernel did not load ({error})") from None
        return CBackend
    raise BackendError(f"unknown backend {name!r}; choose one of {list(PREFERENCE)} or 'auto'")


def choose_backend(name: str) -> str:
    if name != "auto":
        backend_class(name)  # raises if unknown or unavailable
        return name
    return available_backends()[0]  # numpy is always there
