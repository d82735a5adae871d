"""The C backend: ganpack's own kernel (csrc/), compiled into ganpack._kernel through cffi.

This layer checks every argument before calling C (shape, dtype, contiguity), turns C status
codes into ganpack exceptions, and gives the native stack an owner: it is freed with the
Python object. One stack serves any number of threads: gp_stack_run never mutates it.
Besides float runs: uint8 pixels in and out, float inputs checked in C (finite, or in [-1, 1]),
the latent stream (draw_latents) and a whole sample in one call (gp_stack_sample). CBackend's
run_into and sample_into are Model's two operations, each one C call; they skip the checks Model
has already made (at batch 1 the Python around the call is most of its time).

A conditional stack (DenseStack.classes > 0) is given to C without its one-hot columns: layer 0
gets W_x (the first input_width columns) and the class-bias table W_y^T + b0 (classes, out0), so
that a label selects a row of biases (csrc/README.md, "Class-conditional stacks"); its runs and
samples take (n,) int32 labels.

precision="bf16" rounds every layer's weights to bfloat16 (gp_stack_set_layer_precision), then runs them
as float32, at float32 speed; biases and the class-bias table stay float32.
"""

from pathlib import Path

import numpy as np

from ganpack._kernel import ffi, lib
from ganpack.backends import CHECK_MESSAGES, BackendError, draw_then_run
from ganpack.contract import IDENTITY, LEAKY_RELU, NORMAL, RELU, SIGMOID, TANH, UNIFORM
from ganpack.dense_stack import DenseStack
from ganpack.errors import InputError
from ganpack.labels import Labels
from ganpack.latents import GENERATOR, Stream
from ganpack.precision import BF16, FP32, at_precision

FLOAT32 = np.dtype(np.float32)  # dtype objects are singletons: `is` is the cheap comparison
UINT8 = np.dtype(np.uint8)
INT32 = np.dtype(np.int32)
GP_F32, GP_U8 = lib.GP_F32, lib.GP_U8  # looked up once: every call at batch 1 counts
DTYPE_CODES: dict[np.dtype[np.float32 | np.uint8], int] = {FLOAT32: GP_F32, UINT8: GP_U8}
DISTRIBUTION_CODES: dict[str, int] = {NORMAL: lib.GP_LATENT_NORMAL, UNIFORM: lib.GP_LATENT_UNIFORM}
MAX_ROWS_PER_CALL = 1 << 24  # the C API counts rows in an int; larger requests go in slices

ACTIVATION_CODES: dict[str, int] = {IDENTITY: lib.GP_ACT_IDENTITY, LEAKY_RELU: lib.GP_ACT_LEAKY_RELU,
                                    RELU: lib.GP_ACT_RELU, TANH: lib.GP_ACT_TANH, SIGMOID: lib.GP_ACT_SIGMOID}
PRECISION_CODES: dict[str, int] = {FP32: lib.GP_PRECISION_F32, BF16: lib.GP_PRECISION_BF16}
ISA_CODES: dict[str, int] = {"auto": lib.GP_ISA_AUTO, "portable": lib.GP_ISA_PORTABLE,
                             "avx2_fma": lib.GP_ISA_AVX2_FMA, "avx512": lib.GP_ISA_AVX512}


def _check(status: int, doing: str) -> None:
    if status != lib.GP_OK:
        raise BackendError(f"C kernel failed to {doing}: {ffi.string(lib.gp_status_message(status)).decode()}")


def kernel_isa() -> str:
    """The instruction set the kernel picks on this CPU: avx512, avx2_fma or portable."""
    name: bytes = ffi.string(lib.gp_isa_name(lib.gp_best_isa()))
    return name.decode()


class NativeStack:
    """Owns one gp_stack. `logits_out`: leave the last layer un-activated (its logits). `threads`: threads per
    run, the caller's plus workers the stack owns (0 = one per CPU, at most 8; 1 = none). `precision`: of
    the stored weights; bf16 ones are rounded here first (ganpack.precision.at_precision, which refuses
    weights beyond bf16's range), so that C stores exactly the numpy reference's weights."""

    def __init__(self, stack: DenseStack, isa: str = "auto", logits_out: bool = False, threads: int = 0,
                 precision: str = FP32, stream: Stream | None = None):
        if isa not in ISA_CODES:
            raise BackendError(f"unknown ISA {isa!r}; choose one of {list(ISA_CODES)}")
        if precision not in PRECISION_CODES:
            raise BackendError(f"unknown precision {precision!r}; choose one of {list(PRECISION_CODES)}")
        stack = at_precision(stack, precision)
        widths = ffi.new("int[]", [stack.input_width, *stack.widths[1:]])  # without the one-hot columns
        handle = ffi.new("gp_stack **")
        _check(lib.gp_stack_create_threads(len(stack.layers), widths, ISA_CODES[isa], threads, handle),
               f"create a stack ({isa}, {threads} threads)")
        self._stack = ffi.gc(handle[0], lib.gp_stack_free)
        self.in_width, self.out_width, self.classes = stack.input_width, stack.widths[-1], stack.classes
        if stack.classes:  # W [x; onehot(y)] + b = W_x x + (W_y[:, y] + b): a bias row per class
            table = stack.class_bias()
            _check(lib.gp_stack_set_class_bias(self._stack, stack.classes, ffi.from_buffer("float[]", table)),
                   f"load the class-bias table ({stack.classes} classes)")
        for index, layer in enumerate(stack.layers):
            activation = IDENTITY if logits_out and index == len(stack.layers) - 1 else layer.activation
            columns = layer.weight[:, :stack.input_width] if index == 0 else layer.weight  # W_x of layer 0
            weight = np.ascontiguousarray(columns, dtype=np.float32)  # (out, in)
            bias = np.ascontiguousarray(layer.bias, dtype=np.float32)  # (out,)
            _check(lib.gp_stack_set_layer_precision(self._stack, index, ffi.from_buffer("float[]", weight),
                                                    ffi.from_buffer("float[]", bias), ACTIVATION_CODES[activation],
                                                    float(layer.alpha) if activation == LEAKY_RELU else 0.0,
                                                    PRECISION_CODES[precision]),
                   f"load layer {index}")
        self.isa = ffi.string(lib.gp_isa_name(lib.gp_stack_isa(self._stack))).decode()
        self.stream = stream  # the latent stream sample_into draws (a generator's); None: it does not sample
        # gp_stack_sample's stream arguments; None where C cannot draw the stream
        self._stream_codes = None if stream is None or stream.generator != GENERATOR else \
            (DISTRIBUTION_CODES[stream.distribution], stream.scale, stream.offset)

    def run(self, x: np.ndarray, out: np.ndarray | None = None, check: str | None = None,
            labels: np.ndarray | None = None) -> np.ndarray:
        """x (batch, in) float32 or uint8, C-contiguous -> (batch, out) float32, or into `out` (float32 or
        uint8 pixels) when given: run_into with every argument checked first."""
        if not (type(x) is np.ndarray and x.ndim == 2 and x.shape[1] == self.in_width and x.dtype in DTYPE_CODES):
            raise BackendError(f"C kernel input must be float32 or uint8 (batch, {self.in_width}), got "
                               f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        if not x.flags.c_contiguous:
            raise BackendError("C kernel input must be C-contiguous")
        self._check_labels(labels, len(x))
        if out is None:
            out = np.empty((len(x), self.out_width), FLOAT32)
        else:
            self._check_out(out, len(x))
        return self.run_into(x, labels, out, check)

    # ---- the one-call paths: arguments already checked (at batch 1 the Python around the call is
    # most of its time), at most MAX_ROWS_PER_CALL rows per C call

    def run_into(self, x: np.ndarray, labels: Labels | None, out: np.ndarray, check: str | None = None) -> np.ndarray:
        """x (n, in) float32 or uint8 pixels (read as x / 127.5 - 1) through the stack into `out`, n *
        out_width float32 or uint8 pixels (written as clip(rint((y + 1) * 127.5), 0, 255)), all inside
        the C call; row i with class labels[i] for a conditional stack. check: what float inputs must be
        (CHECK_MESSAGES), checked in C chunk by chunk in cache as the first layer reads them, else
        InputError; labels out of range: InputError."""
        n = len(x)
        if n > MAX_ROWS_PER_CALL:  # the C API counts rows in an int
            rows = out.reshape(n, -1)
            for first in range(0, n, MAX_ROWS_PER_CALL):
                part = slice(first, first + MAX_ROWS_PER_CALL)
                self.run_into(x[part], None if labels is None else labels[part], rows[part], check)
            return out
        in_code = GP_U8 if x.dtype is UINT8 else CHECK_CODES[check]
        out_code = GP_U8 if out.dtype is UINT8 else GP_F32
        if labels is None:
            status = lib.gp_stack_run_typed(self._stack, ffi.from_buffer(x), in_code, n, ffi.from_buffer(out), out_code)
        else:
            status = lib.gp_stack_run_labels(self._stack, ffi.from_buffer(x), in_code,
                                             ffi.from_buffer("int32_t[]", labels), n, ffi.from_buffer(out), out_code)
        if status:
            _check_run(status, check)
        return out

    def sample_into(self, seed: int | None, first_row: int, labels: Labels | None, out: np.ndarray) -> np.ndarray:
        """Rows [first_row, first_row + n) of the latent stream for `seed` through the stack into `out`
        (as run_into's), in one C call: gp_stack_sample, or gp_stack_sample_labels. A format_version 1
        package's stream (numpy's, drawn in order) is drawn in numpy, then run in C."""
        codes = self._stream_codes
        if codes is None:
            return draw_then_run(self, seed, first_row, labels, out)
        n = len(out)
        if n > MAX_ROWS_PER_CALL:
            rows = out.reshape(n, -1)
            for first in range(0, n, MAX_ROWS_PER_CALL):
                part = slice(first, first + MAX_ROWS_PER_CALL)
                self.sample_into(seed, first_row + first, None if labels is None else labels[part], rows[part])
            return out
        distribution, scale, offset = codes
        out_code = GP_U8 if out.dtype is UINT8 else GP_F32
        if labels is None:
            status = lib.gp_stack_sample(self._stack, seed, first_row, n, distribution, scale, offset,
                                         ffi.from_buffer(out), out_code)
        else:
            status = lib.gp_stack_sample_labels(self._stack, seed, first_row, n, distribution, scale, offset,
                                                ffi.from_buffer("int32_t[]", labels), ffi.from_buffer(out), out_code)
        if status:
            _check(status, "sample")
        return out

    def _check_labels(self, labels: np.ndarray | None, rows: int) -> None:
        if labels is None:
            if self.classes:
                raise BackendError(f"this stack is conditional ({self.classes} classes): labels are required")
            return
        if not self.classes:
            raise BackendError("this stack is not conditional: it takes no labels")
        if not (type(labels) is np.ndarray and labels.dtype == INT32 and labels.shape == (rows,)
                and labels.flags.c_contiguous):
            raise BackendError(f"labels must be a C-contiguous int32 array of shape ({rows},)")

    def _check_out(self, out: np.ndarray, rows: int) -> None:
        if not (type(out) is np.ndarray and out.dtype in DTYPE_CODES and out.shape == (rows, self.out_width)
                and out.flags.c_contiguous and out.flags.writeable):
            raise BackendError(f"out must be a writeable C-contiguous float32 or uint8 array of shape "
                               f"{(rows, self.out_width)}")


# the gp_dtype of float inputs for each check of their values (CHECK_MESSAGES), done in C
CHECK_CODES: dict[str | None, int] = {None: lib.GP_F32, "finite": lib.GP_F32_FINITE, "image": lib.GP_F32_IMAGE}


def _check_run(status: int, check: str | None) -> None:
    """A failed gp_stack_run_typed: GP_ERR_INPUT is the caller's values (InputError), the rest the kernel's.
    (Labels out of range are GP_ERR_INPUT too, but Model checks them before any call.)"""
    if status == lib.GP_ERR_INPUT:
        raise InputError(CHECK_MESSAGES[check] if check else "a label is out of range")
    _check(status, "run")


def draw_latents(seed: int, first_row: int, rows: int, dim: int, distribution: str, scale: float,
                 offset: float) -> np.ndarray:
    """Rows [first_row, first_row + rows) of the latent stream `seed` (ganpack.latents), in C."""
    z = np.empty((rows, dim), FLOAT32)
    for start in range(0, rows, MAX_ROWS_PER_CALL):
        count = min(MAX_ROWS_PER_CALL, rows - start)
        _check(lib.gp_latents(seed, first_row + start, count, dim, DISTRIBUTION_CODES[distribution], scale, offset,
                              ffi.from_buffer("float[]", z[start:start + count])),
               "draw latents")
    return z


class CBackend(NativeStack):
    """The C kernel as a backend: Model's two operations are NativeStack's run_into and sample_into,
    each one C call."""

    name = "c"

    def __init__(self, stack: DenseStack, onnx_path: Path | str | None = None, threads: int | None = None,
                 precision: str = FP32, stream: Stream | None = None, isa: str = "auto") -> None:
        # The last activation (the discriminator's sigmoid too) is applied in C: a numpy sigmoid alone
        # cost more than the whole C call at batch 1. The C sigmoid's error is 8.9e-8 (csrc/README.md).
        super().__init__(stack, isa, threads=threads or 0, precision=precision, stream=stream)
        self.stack = stack
