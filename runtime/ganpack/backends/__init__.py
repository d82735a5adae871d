"""Backends run a DenseStack on (batch, in) float32 rows; each returns
{"activated": (batch, out), "logits": (batch, out)} holding what the package's outputs need.

  c            our kernel (csrc/), through cffi; fused bias + activation, SIMD dispatch
  onnxruntime  an InferenceSession over the package's .onnx file (optional dependency)
  numpy        a pure-numpy reference: no compiler, no onnxruntime

Every backend is a Backend; the C backend is also a FusedBackend, which Model uses for its
one-call paths.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ganpack.dense_stack import DenseStack
from ganpack.errors import GanpackError, InputError
from ganpack.precision import BACKENDS as PRECISION_BACKENDS

PREFERENCE = ("c", "onnxruntime", "numpy")  # "auto" takes the first that is available


class BackendError(GanpackError):
    """A backend that is unknown, not installed, or failed while running."""


class Backend(Protocol):
    """What Model needs of every backend."""

    name: str  # as load(backend=...) spells it
    stack: DenseStack  # the network it runs
    out_width: int  # stack.widths[-1]

    def __init__(self, stack: DenseStack, onnx_path: Path | str | None, threads: int | None = None,
                 precision: str = "fp32") -> None:
        """onnx_path: the graph `stack` was read from; threads: per call, None for the backend's default;
        precision: of the weights (ganpack.precision), one of precision.BACKENDS' for this backend."""

    def run(self, x: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """x (batch, stack.input_width) float32, C-contiguous -> "activated" and/or "logits", each
        (batch, out_width) float32. labels: (batch,) int32 class indices, already checked, for a
        conditional stack (stack.classes > 0), else None. Safe to call from several threads at once."""


@runtime_checkable
class FusedBackend(Backend, Protocol):
    """A backend that does a whole sample or score in one native call: latents drawn, uint8
    pixels in and out and float inputs checked inside it. The callables it returns skip the
    checks Model has already made (at batch 1 the Python around the call is most of the time)."""

    def sampler(self, distribution: str, scale: float, offset: float) -> Callable[[int, np.ndarray], np.ndarray]:
        """draw(seed, out) -> out: rows 0..n-1 of latent stream `seed` (ganpack.latents) through the
        stack, into a fresh C-contiguous `out` of n * out_width float32 or uint8 values."""

    def runner(self, check: str = "finite") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """run(x, out) -> out: x (n, in) float32 or uint8 pixels, C-contiguous, into a fresh
        C-contiguous `out` of n * out_width float32 or uint8 values; float inputs are checked
        (`check`: "finite" or "image", i.e. in [-1, 1]) inside the call, else InputError."""

    def labelled_sampler(self, distribution: str, scale: float,
                         offset: float) -> Callable[[int, np.ndarray, np.ndarray], np.ndarray]:
        """draw(seed, labels, out) -> out: sampler's draw for a conditional stack, row i with class
        labels[i] ((n,) int32, checked), in the same one native call."""

    def labelled_runner(self, check: str = "finite") -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """run(x, labels, out) -> out: runner's run for a conditional stack, row i with class labels[i]
        ((n,) int32, checked)."""


def check_labels(stack: DenseStack, labels: np.ndarray | None) -> None:
    """Labels must come with a conditional stack and only with one (Model has checked their values);
    a mismatch is a caller's bug, refused rather than run without the labels or with them ignored."""
    if (labels is None) != (stack.classes == 0):
        raise BackendError(f"labels {'are required' if labels is None else 'were given'} for a stack with "
                           f"{stack.classes} classes")


def available_backends() -> list[str]:
    names = []
    for name in PREFERENCE:
        try:
            backend_class(name)
        except BackendError:
            continue
        names.append(name)
    return names


def backend_class(name: str) -> type[Backend]:
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


def choose_backend(name: str, precision: str = "fp32") -> str:
    """The backend `name` ("auto": the first available that runs `precision`), checked: available, and
    able to run weights of `precision` (else InputError: a combination the caller asked for)."""
    if name != "auto":
        backend_class(name)  # raises if unknown or unavailable
        if name not in PRECISION_BACKENDS[precision]:
            raise InputError(f"precision {precision!r} runs on the backends {list(PRECISION_BACKENDS[precision])}, "
                             f"not on {name!r}")
        return name
    return [b for b in available_backends() if b in PRECISION_BACKENDS[precision]][0]  # numpy is always there
