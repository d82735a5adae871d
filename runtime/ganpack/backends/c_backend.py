"""The C backend: ganpack's own kernel (csrc/), compiled into ganpack._kernel through cffi.

This layer checks every argument before calling C (shape, dtype, contiguity), turns C status
codes into ganpack exceptions, and gives the native stack an owner: it is freed with the
Python object. One stack serves any number of threads: gp_stack_run never mutates it.
Besides float runs: uint8 pixels in and out, float inputs checked in C (finite, or in [-1, 1]),
the latent stream (draw_latents) and a whole sample in one call (CBackend.sampler); Model uses
sampler and runner, which skip the checks it has already made, for its batch-1 path.

A conditional stack (DenseStack.classes > 0) is given to C without its one-hot columns: layer 0
gets W_x (the first input_width columns) and the class-bias table W_y^T + b0 (classes, out0), so
that a label selects a row of biases (csrc/README.md, "Class-conditional stacks"); its runs and
samples take (n,) int32 labels.

precision="bf16" stores every layer's weights as bfloat16 (gp_stack_set_layer_precision): half the
bytes, widened back to float32 exactly in the hot loop; biases and the class-bias table stay float32.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ganpack._kernel import ffi, lib
from ganpack.backends import BackendError
from ganpack.contract import IDENTITY, LEAKY_RELU, NORMAL, RELU, SIGMOID, TANH, UNIFORM
from ganpack.dense_stack import DenseStack
from ganpack.errors import InputError
from ganpack.precision import BF16, FP32, at_precision

FLOAT32 = np.dtype(np.float32)  # dtype objects are singletons: `is` is the cheap comparison
UINT8 = np.dtype(np.uint8)
INT32 = np.dtype(np.int32)
DTYPE_CODES: dict[np.dtype[np.float32 | np.uint8], int] = {FLOAT32: lib.GP_F32, UINT8: lib.GP_U8}
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
                 precision: str = FP32):
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
            first = stack.layers[0]
            table = np.ascontiguousarray(first.weight[:, stack.input_width:].T + first.bias, dtype=np.float32)
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

    def run(self, x: np.ndarray, out: np.ndarray | None = None, check: str | None = None,
            labels: np.ndarray | None = None) -> np.ndarray:
        """x (batch, in) float32 or uint8, C-contiguous -> (batch, out) float32, or into `out` (float32 or
        uint8 pixels) when given. uint8 inputs are read as x / 127.5 - 1, uint8 outputs are written as
        clip(rint((y + 1) * 127.5), 0, 255), both inside the C call. check: what float inputs must be,
        checked in C chunk by chunk in cache, else InputError (see CHECKS). labels: (batch,) int32 class
        indices, required by a conditional stack and refused by any other (C checks their range).
        The checks are written to cost little: at batch 1 they are a third of the call."""
        if not (type(x) is np.ndarray and x.ndim == 2 and x.shape[1] == self.in_width and x.dtype in DTYPE_CODES):
            raise BackendError(f"C kernel input must be float32 or uint8 (batch, {self.in_width}), got "
                               f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        if not x.flags.c_contiguous:
            raise BackendError("C kernel input must be C-contiguous")
        rows = x.shape[0]
        self._check_labels(labels, rows)
        if out is None:
            out = np.empty((rows, self.out_width), FLOAT32)
        else:
            self._check_out(out, rows)
        in_code, out_code = _input_code(x.dtype, check), DTYPE_CODES[out.dtype]
        for start in range(0, rows, MAX_ROWS_PER_CALL):
            count = min(MAX_ROWS_PER_CALL, rows - start)
            part_in, part_out = (x, out) if count == rows else (x[start:start + count], out[start:start + count])
            if labels is None:
                status = lib.gp_stack_run_typed(self._stack, ffi.from_buffer(part_in), in_code, count,
                                                ffi.from_buffer(part_out), out_code)
            else:
                status = lib.gp_stack_run_labels(self._stack, ffi.from_buffer(part_in), in_code,
                                                 ffi.from_buffer("int32_t[]", labels[start:start + count]), count,
                                                 ffi.from_buffer(part_out), out_code)
            if status:
                _check_run(status, check)
        return out

    def sample(self, seed: int, distribution: str, scale: float, offset: float, out: np.ndarray,
               labels: np.ndarray | None = None) -> np.ndarray:
        """One C call per up to 2^24 rows: latents of rows 0..n-1 of stream `seed`, the stack (row i with
        class labels[i] for a conditional stack), and the output written into `out` (n, out) float32 or
        uint8 pixels."""
        rows = len(out)
        self._check_out(out, rows)
        self._check_labels(labels, rows)
        for start in range(0, rows, MAX_ROWS_PER_CALL):
            count = min(MAX_ROWS_PER_CALL, rows - start)
            part = out if count == rows else out[start:start + count]
            if labels is None:
                status = lib.gp_stack_sample(self._stack, seed, start, count, DISTRIBUTION_CODES[distribution],
                                             scale, offset, ffi.from_buffer(part), DTYPE_CODES[out.dtype])
            else:
                status = lib.gp_stack_sample_labels(self._stack, seed, start, count,
                                                    DISTRIBUTION_CODES[distribution], scale, offset,
                                                    ffi.from_buffer("int32_t[]", labels[start:start + count]),
                                                    ffi.from_buffer(part), DTYPE_CODES[out.dtype])
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


# what float inputs must be, checked in C: name -> (gp_dtype code, what the error says)
CHECKS: dict[str | None, tuple[int, str]] = {
    None: (lib.GP_F32, ""), "finite": (lib.GP_F32_FINITE, "inputs hold a NaN or an infinity"),
    "image": (lib.GP_F32_IMAGE, "images hold a NaN or a value outside [-1, 1]")}


def _input_code(dtype: np.dtype, check: str | None) -> int:
    return lib.GP_U8 if dtype is UINT8 else CHECKS[check][0]


def _check_run(status: int, check: str | None) -> None:
    """A failed gp_stack_run_typed: GP_ERR_INPUT is the caller's values (InputError), the rest the kernel's.
    (Labels out of range are GP_ERR_INPUT too, but Model checks them before any call.)"""
    if status == lib.GP_ERR_INPUT:
        raise InputError(CHECKS[check][1] or "a label is out of range")
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


class CBackend:
    """The C kernel: float32 or uint8 rows in, float32 or uint8 pixels out, latents drawn in C."""

    name = "c"  # a FusedBackend: sampler and runner put latents, uint8 in and out and value checks in one C call

    def __init__(self, stack: DenseStack, onnx_path: Path | str | None = None, threads: int | None = None,
                 precision: str = FP32, isa: str = "auto") -> None:
        self.stack = stack
        self.out_width = stack.widths[-1]
        # The last activation (the discriminator's sigmoid too) is applied in C: a numpy sigmoid alone
        # cost more than the whole C call at batch 1. The C sigmoid's error is 8.9e-8 (csrc/README.md).
        self.native = NativeStack(stack, isa, threads=threads or 0, precision=precision)

    def run(self, x: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return {"activated": self.native.run(x, labels=labels)}

    def sample_into(self, seed: int, distribution: str, scale: float, offset: float, out: np.ndarray) -> None:
        self.native.sample(seed, distribution, scale, offset, out)

    def sampler(self, distribution: str, scale: float, offset: float) -> Callable[[int, np.ndarray], np.ndarray]:
        """draw(seed, out) -> out: NativeStack.sample for arrays the caller has just made itself (C-contiguous,
        n * out_width float32 or uint8 values), with nothing checked twice: at batch 1 the Python around
        the C call is most of the time."""
        stack, code, run, from_buffer = self.native._stack, DISTRIBUTION_CODES[distribution], lib.gp_stack_sample, \
            ffi.from_buffer
        u8, f32, native = lib.GP_U8, lib.GP_F32, self.native

        def draw(seed: int, out: np.ndarray) -> np.ndarray:
            n = len(out)
            if n > MAX_ROWS_PER_CALL:
                return native.sample(seed, distribution, scale, offset, out.reshape(n, -1))
            status = run(stack, seed, 0, n, code, scale, offset, from_buffer(out), u8 if out.dtype is UINT8 else f32)
            if status:
                _check(status, "sample")
            return out

        return draw

    def runner(self, check: str = "finite") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """run(x, out) -> out: NativeStack.run for arguments the caller has checked (x C-contiguous
        (n, in) float32 or uint8, out a fresh C-contiguous array of n * out_width float32 or uint8), except
        the values of float inputs: C checks them chunk by chunk, in cache (`check`, see CHECKS)."""
        stack, run, from_buffer, native = self.native._stack, lib.gp_stack_run_typed, ffi.from_buffer, self.native
        u8, f32, checked = lib.GP_U8, lib.GP_F32, CHECKS[check][0]

        def run_checked(x: np.ndarray, out: np.ndarray) -> np.ndarray:
            n = len(x)
            if n > MAX_ROWS_PER_CALL:
                return native.run(x, out.reshape(n, -1), check)
            status = run(stack, from_buffer(x), u8 if x.dtype is UINT8 else checked, n, from_buffer(out),
                         u8 if out.dtype is UINT8 else f32)
            if status:
                _check_run(status, check)
            return out

        return run_checked

    def labelled_sampler(self, distribution: str, scale: float,
                         offset: float) -> Callable[[int, np.ndarray, np.ndarray], np.ndarray]:
        """draw(seed, labels, out) -> out: sampler's draw for a conditional stack, row i with class labels[i]
        ((n,) C-contiguous int32, in range): gp_stack_sample_labels, one C call."""
        stack, code, run, from_buffer = (self.native._stack, DISTRIBUTION_CODES[distribution],
                                         lib.gp_stack_sample_labels, ffi.from_buffer)
        u8, f32, native = lib.GP_U8, lib.GP_F32, self.native

        def draw(seed: int, labels: np.ndarray, out: np.ndarray) -> np.ndarray:
            n = len(out)
            if n > MAX_ROWS_PER_CALL:
                return native.sample(seed, distribution, scale, offset, out.reshape(n, -1), labels)
            status = run(stack, seed, 0, n, code, scale, offset, from_buffer("int32_t[]", labels), from_buffer(out),
                         u8 if out.dtype is UINT8 else f32)
            if status:
                _check(status, "sample")
            return out

        return draw

    def labelled_runner(self, check: str = "finite") -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """run(x, labels, out) -> out: runner's run for a conditional stack, row i with class labels[i]
        ((n,) C-contiguous int32, in range): gp_stack_run_labels, one C call."""
        stack, run, from_buffer, native = self.native._stack, lib.gp_stack_run_labels, ffi.from_buffer, self.native
        u8, f32, checked = lib.GP_U8, lib.GP_F32, CHECKS[check][0]

        def run_checked(x: np.ndarray, labels: np.ndarray, out: np.ndarray) -> np.ndarray:
            n = len(x)
            if n > MAX_ROWS_PER_CALL:
                return native.run(x, out.reshape(n, -1), check, labels)
            status = run(stack, from_buffer(x), u8 if x.dtype is UINT8 else checked, from_buffer("int32_t[]", labels),
                         n, from_buffer(out), u8 if out.dtype is UINT8 else f32)
            if status:
                _check_run(status, check)
            return out

        return run_checked
