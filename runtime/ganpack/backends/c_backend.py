"""The C backend: ganpack's own kernel (csrc/), compiled into ganpack._kernel through cffi.

This layer checks every argument before calling C (shape, dtype, contiguity), turns C status
codes into ganpack exceptions, and gives the native stack an owner: it is freed with the
Python object. One stack serves any number of threads: gp_stack_run never mutates it.
"""

import numpy as np

from ganpack._kernel import ffi, lib
from ganpack.backends import BackendError
from ganpack.dense_stack import DenseStack

FLOAT32 = np.dtype(np.float32)  # dtype objects are singletons: `is` is the cheap comparison

ACTIVATION_CODES = {"identity": lib.GP_ACT_IDENTITY, "leaky_relu": lib.GP_ACT_LEAKY_RELU, "relu": lib.GP_ACT_RELU,
                    "tanh": lib.GP_ACT_TANH, "sigmoid": lib.GP_ACT_SIGMOID}
ISA_CODES = {"auto": lib.GP_ISA_AUTO, "portable": lib.GP_ISA_PORTABLE, "avx2_fma": lib.GP_ISA_AVX2_FMA,
             "avx512": lib.GP_ISA_AVX512}


def _check(status: int, doing: str) -> None:
    if status != lib.GP_OK:
        raise BackendError(f"C kernel failed to {doing}: {ffi.string(lib.gp_status_message(status)).decode()}")


def kernel_isa() -> str:
    """The instruction set the kernel picks on this CPU: avx512, avx2_fma or portable."""
    return ffi.string(lib.gp_isa_name(lib.gp_best_isa())).decode()


class NativeStack:
    """Owns one gp_stack. `logits_out`: leave the last layer un-activated (its logits). `threads`: threads per
    run, the caller's plus workers the stack owns (0 = one per CPU, at most 8; 1 = none)."""

    def __init__(self, stack: DenseStack, isa: str = "auto", logits_out: bool = False, threads: int = 0):
        if isa not in ISA_CODES:
            raise BackendError(f"unknown ISA {isa!r}; choose one of {list(ISA_CODES)}")
        widths = ffi.new("int[]", stack.widths)
        handle = ffi.new("gp_stack **")
        _check(lib.gp_stack_create_threads(len(stack.layers), widths, ISA_CODES[isa], threads, handle),
               f"create a stack ({isa}, {threads} threads)")
        self._stack = ffi.gc(handle[0], lib.gp_stack_free)
        self.in_width, self.out_width = stack.widths[0], stack.widths[-1]
        for index, layer in enumerate(stack.layers):
            activation = "identity" if logits_out and index == len(stack.layers) - 1 else layer.activation
            weight = np.ascontiguousarray(layer.weight, dtype=np.float32)  # (out, in)
            bias = np.ascontiguousarray(layer.bias, dtype=np.float32)  # (out,)
            _check(lib.gp_stack_set_layer(self._stack, index, ffi.from_buffer("float[]", weight),
                                          ffi.from_buffer("float[]", bias), ACTIVATION_CODES[activation],
                                          float(layer.alpha) if activation == "leaky_relu" else 0.0),
                   f"load layer {index}")
        self.isa = ffi.string(lib.gp_isa_name(lib.gp_stack_isa(self._stack))).decode()

    def run(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """x (batch, in) float32 C-contiguous -> (batch, out) float32 (into `out` when given).
        The checks are written to cost little: at batch 1 they are a third of the call."""
        if not (type(x) is np.ndarray and x.dtype is FLOAT32 and x.ndim == 2 and x.shape[1] == self.in_width):
            raise BackendError(f"C kernel input must be float32 (batch, {self.in_width}), got "
                               f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        if not x.flags.c_contiguous:
            raise BackendError("C kernel input must be C-contiguous")
        rows = x.shape[0]
        if out is None:
            out = np.empty((rows, self.out_width), FLOAT32)
        elif not (type(out) is np.ndarray and out.dtype is FLOAT32 and out.shape == (rows, self.out_width)
                  and out.flags.c_contiguous and out.flags.writeable):
            raise BackendError(f"out must be a writeable C-contiguous float32 array of shape {(rows, self.out_width)}")
        if rows:
            status = lib.gp_stack_run(self._stack, ffi.from_buffer("float[]", x), rows, ffi.from_buffer("float[]", out))
            if status:
                _check(status, "run")
        return out


class CBackend:
    name = "c"

    def __init__(self, stack: DenseStack, onnx_path=None, threads: int | None = None, isa: str = "auto"):
        self.stack = stack
        self.out_width = stack.widths[-1]
        # The discriminator's graph exposes its logits too: keep them, and apply the sigmoid in numpy.
        self.wants_logits = "logits" in stack.outputs.values()
        self.native = NativeStack(stack, isa, logits_out=self.wants_logits, threads=threads or 0)
        self.writes_into = "logits" if self.wants_logits else "activated"  # what run_into produces

    def run(self, x: np.ndarray) -> dict:
        return {self.writes_into: self.native.run(x)}

    def run_into(self, x: np.ndarray, out: np.ndarray) -> None:
        self.native.run(x, out)
