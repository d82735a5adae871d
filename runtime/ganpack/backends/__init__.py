"""Backends run a DenseStack: Model calls each through the same two operations, run_into and
sample_into, and nothing else.

  c            our kernel (csrc/), through cffi: each operation one C call (latents, both
               layers, the pixel mappings and the value checks inside it)
  onnxruntime  an InferenceSession over the package's .onnx file (optional dependency)
  numpy        a pure-numpy reference: no compiler, no onnxruntime

The last two define run() on float32 batches and share run_into and sample_into
(ganpack.backends.chunked).
"""

from pathlib import Path
from typing import Protocol

import numpy as np

from ganpack.dense_stack import DenseStack
from ganpack.errors import GanpackError, InputError
from ganpack.labels import Labels
from ganpack.latents import Stream
from ganpack.precision import BACKENDS as PRECISION_BACKENDS

PREFERENCE = ("c", "onnxruntime", "numpy")  # "auto" takes the first that is available
# run_into's checks of float inputs: check -> what the InputError says (Model then names the value)
CHECK_MESSAGES: dict[str, str] = {"finite": "inputs hold a NaN or an infinity",
                                  "image": "images hold a NaN or a value outside [-1, 1]"}


class BackendError(GanpackError):
    """A backend that is unknown, not installed, or failed while running."""


class Backend(Protocol):
    """What Model needs of every backend. Model checks every argument first (shapes, dtypes,
    C-contiguity, labels; out a fresh or caller's array it has checked): backends trust them."""

    name: str  # as load(backend=...) spells it
    stack: DenseStack  # the network it runs
    out_width: int  # stack.widths[-1]

    def __init__(self, stack: DenseStack, onnx_path: Path | str | None, threads: int | None = None,
                 precision: str = "fp32", stream: Stream | None = None) -> None:
        """onnx_path: the graph `stack` was read from; threads: per call, None for the backend's default;
        precision: of the weights (ganpack.precision), one of precision.BACKENDS' for this backend;
        stream: the latent stream a generator samples (None for a discriminator)."""

    def run_into(self, x: np.ndarray, labels: Labels | None, out: np.ndarray, check: str | None = None) -> np.ndarray:
        """The stack's activated output for x into `out`, returned.

        x: (n, in) float32, or uint8 pixels read as x / 127.5 - 1. out: n * out_width C-contiguous
        float32 values, or uint8 pixels written as clip(rint((y + 1) * 127.5), 0, 255). labels: (n,)
        int32 class indices for a conditional stack, else None. check: what float inputs must be,
        "finite" or "image" (finite and in [-1, 1]), else InputError (Model then names the value);
        None: nothing. Safe to call from several threads at once."""

    def sample_into(self, seed: int | None, first_row: int, labels: Labels | None, out: np.ndarray) -> np.ndarray:
        """Rows [first_row, first_row + n) of the latent stream for `seed` (checked by Stream.seed)
        through the stack into `out` (as run_into's), returned; n = len(out)."""


class Drawing(Protocol):
    """What draw_then_run needs: a backend's stream and run_into."""

    stream: Stream | None

    def run_into(self, x: np.ndarray, labels: Labels | None, out: np.ndarray, check: str | None = None) -> np.ndarray:
        ...


def draw_then_run(backend: Drawing, seed: int | None, first_row: int, labels: Labels | None,
                  out: np.ndarray) -> np.ndarray:
    """sample_into as the stream's rows drawn in numpy (or C's gp_latents), then run_into: the chunked
    backends' way, and the C backend's for a stream C cannot draw (format_version 1's)."""
    if backend.stream is None:
        raise BackendError("this stack has no latent stream: only a generator samples")
    return backend.run_into(backend.stream.draw(seed, first_row, len(out)), labels, out)


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
