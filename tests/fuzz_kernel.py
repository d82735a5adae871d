"""Coverage-guided fuzz target (atheris, libFuzzer's engine) for the C kernel's stack-building
and run API, through cffi, plus the Python checks in front of it.

    python tests/fuzz_kernel.py -max_total_time=60          # libFuzzer flags pass through

Each input is decoded into: layer count and widths (invalid ones included), ISA, thread count,
per-layer activation codes, alphas, weight precisions (float32, bf16, unknown codes) and weights
(NaN and infinity included; bf16 ones are checked against numpy on the rounded weights), a batch and its
input; then typed runs (uint8, float32 or range-checked float32 in, uint8 or float32 out, unknown
dtype codes included), one-call
samples (any seed, first row, distribution code, scale and offset, NaN and infinity included) and
class-conditional runs (a class-bias table of any row count, labels in and out of range).
The C API must return a status code for every bad argument, never crash, and whenever it
succeeds on finite numbers its output must match numpy within the kernel's tolerance, in every row
that float32 math cannot overflow (float32_safe_rows: huge finite weights stay in, since they reach
the activations' saturation and the bf16 rounding near FLT_MAX, but a row whose sums may pass
FLT_MAX has no float32 answer to check, as the kernel and numpy overflow in different places); uint8
outputs must be the uint8 mapping of the float run, and a sample must equal gp_latents followed
by the float run, bit for bit; a labelled run's row of class c must be, bit for bit, the row of
an unlabelled run whose first-layer bias is the table's row c.
Coverage: atheris instruments ganpack's Python code; the C code is not instrumented (gcc has
no libFuzzer coverage), so it is reached through the Python paths and checked by the oracle.
"""

import sys

import atheris
import numpy as np

with atheris.instrument_imports():
    from ganpack.backends import BackendError
    from ganpack.backends.c_backend import NativeStack, ffi, lib
    from ganpack.dense_stack import DenseStack, Layer
    from ganpack.precision import round_bf16

ACTIVATIONS = ["identity", "leaky_relu", "relu", "tanh", "sigmoid"]
MAX_WIDTH = 300
FLOAT32_MAX = float(np.finfo(np.float32).max)


def reference(weights, biases, codes, alphas, x):
    """The stack in float64 (rows of float32_safe_rows are the ones to compare): (batch, widths[-1])."""
    with np.errstate(over="ignore", invalid="ignore"):  # the rows that overflow here are not compared
        for weight, bias, code, alpha in zip(weights, biases, codes, alphas):
            z = x.astype(np.float64) @ weight.astype(np.float64).T + bias
            x = [z, np.maximum(alpha * z, z), np.maximum(z, 0), np.tanh(z),
                 1 / (1 + np.exp(-np.clip(z, -700, 700)))][code]
    return x


def float32_safe_rows(weights, biases, codes, x) -> np.ndarray:
    """(batch,) bool: the rows that no float32 computation of the stack can overflow in, whatever
    its summation order or FMA use. Each partial sum of w . x + b is at most |w| . |x| + |b|, and
    every activation compared here (leaky_relu's alpha in [0, 1)) keeps |y| <= |z|, tanh and
    sigmoid <= 1; so that bound, carried from layer to layer in float64, bounds every float32
    intermediate. Half of FLT_MAX leaves room for the rounding of up to MAX_WIDTH + 1 terms
    ((1 + 2^-24)^301 - 1 is 2e-5) and of the float32 activations fed to the next layer."""
    bound = np.abs(x.astype(np.float64))  # (batch, widths[0])
    safe = np.ones(len(x), bool)
    with np.errstate(over="ignore", invalid="ignore"):  # an inf or NaN (inf * 0) bound is unsafe, as it should be
        for weight, bias, code in zip(weights, biases, codes):
            bound = bound @ np.abs(weight.astype(np.float64)).T + np.abs(bias.astype(np.float64))  # (batch, fan_out)
            safe &= (bound < FLOAT32_MAX / 2).all(axis=1)
            if code in (3, 4):  # tanh, sigmoid
                bound = np.minimum(bound, 1.0)
    return safe


def fuzz_c_api(data: atheris.FuzzedDataProvider) -> None:
    n_layers = data.ConsumeIntInRange(-1, 4)
    widths = [data.ConsumeIntInRange(-2, MAX_WIDTH) for _ in range(max(n_layers, 0) + 1)]
    isa, threads = data.ConsumeIntInRange(-1, 4), data.ConsumeIntInRange(-1, 4)
    handle = ffi.new("gp_stack **")
    status = lib.gp_stack_create_threads(n_layers, ffi.new("int[]", widths or [0]), isa, threads, handle)
    if status != lib.GP_OK:
        assert handle[0] == ffi.NULL
        return
    assert n_layers >= 1 and all(w >= 1 for w in widths) and threads >= 0, (n_layers, widths, isa, threads)
    stack = ffi.gc(handle[0], lib.gp_stack_free)
    weights, biases, codes, alphas, precisions, finite = [], [], [], [], [], True
    for index in range(n_layers):
        fan_in, fan_out = widths[index], widths[index + 1]
        raw = data.ConsumeBytes(4 * (fan_out * fan_in + fan_out))
        values = np.frombuffer(raw.ljust(4 * (fan_out * fan_in + fan_out), b"\0"), np.float32)
        if data.ConsumeBool():  # mostly sane magnitudes, so the oracle has work to do
            values = (np.tanh(np.nan_to_num(values)) / np.sqrt(fan_in)).astype(np.float32)
        weight = np.ascontiguousarray(values[:fan_out * fan_in].reshape(fan_out, fan_in))
        bias = np.ascontiguousarray(values[fan_out * fan_in:])
        assert weight.dtype == bias.dtype == np.float32  # from_buffer reinterprets bytes: the harness must be exact
        code = data.ConsumeIntInRange(-1, 5)
        alpha = data.ConsumeFloat() if code == 1 or data.ConsumeProbability() < 0.1 else 0.0
        precision = data.ConsumeIntInRange(-1, 2)  # float32, bf16, and two unknown codes
        status = lib.gp_stack_set_layer_precision(stack, index, ffi.from_buffer("float[]", weight),
                                                  ffi.from_buffer("float[]", bias), code, alpha, precision)
        if status != lib.GP_OK:
            assert status != lib.GP_ERR_ARGUMENT or precision not in (0, 1), status
            return  # refused: an unknown activation or precision code, or a bad alpha
        assert 0 <= code <= 4 and precision in (0, 1), (code, precision)
        assert lib.gp_stack_layer_precision(stack, index) == precision
        if precision == lib.GP_PRECISION_BF16:  # the stack computes with the rounded weights, exactly
            weight = round_bf16(weight)
        finite &= bool(np.isfinite(values).all() and np.isfinite(weight).all())
        weights.append(weight), biases.append(bias), codes.append(code), alphas.append(alpha)
        precisions.append(precision)
    batch = data.ConsumeIntInRange(-1, 33)
    rng = np.random.default_rng(data.ConsumeIntInRange(0, 1000))
    x = rng.normal(size=(max(batch, 0), widths[0])).astype(np.float32)
    out = np.full((max(batch, 0), widths[-1]), -7.0, np.float32)
    status = lib.gp_stack_run(stack, ffi.from_buffer("float[]", x), batch, ffi.from_buffer("float[]", out))
    if batch < 0:
        assert status != lib.GP_OK
        return
    assert status == lib.GP_OK, status
    if finite and all(0.0 <= a < 1.0 for a, c in zip(alphas, codes) if c == 1):
        safe = float32_safe_rows(weights, biases, codes, x)  # (batch,)
        expected = reference(weights, biases, codes, alphas, x)[safe]
        scale = max(1.0, float(np.abs(expected).max(initial=0)))
        error = float(np.abs(out[safe] - expected).max(initial=0))  # NaN (a NaN out) fails the test too
        assert error <= 1e-4 * scale, (f"C kernel disagrees with numpy by {error:g}: widths {widths}, isa {isa}, "
                                       f"threads {threads}, activations {codes}, batch {batch}")
    fuzz_typed_and_sample(data, stack, widths, batch, x, out)
    fuzz_labels(data, stack, widths, batch, x, weights[0], codes[0], alphas[0], precisions[0])


def to_uint8(y: np.ndarray) -> np.ndarray:
    scaled = np.nan_to_num((y + np.float32(1)) * np.float32(127.5), nan=0.0)
    return np.rint(np.clip(scaled, 0, 255)).astype(np.uint8)


def fuzz_typed_and_sample(data, stack, widths, batch, x, floats) -> None:
    """Typed runs and one-call samples on a stack that ran: statuses, and bit-exact agreement."""
    in_code, out_code = data.ConsumeIntInRange(-1, 4), data.ConsumeIntInRange(-1, 2)
    pixels = np.random.default_rng(batch).integers(0, 256, size=x.shape, dtype=np.uint8)
    source = pixels if in_code == lib.GP_U8 else np.clip(x, -1, 1) if data.ConsumeBool() else x
    if in_code == lib.GP_F32_FINITE and data.ConsumeBool() and source.size:
        source = source.copy()
        where = data.ConsumeIntInRange(0, source.size - 1)
        source.flat[where] = [np.nan, np.inf, -np.inf][data.ConsumeIntInRange(0, 2)]
    result = np.full(floats.shape, 7, np.uint8 if out_code == lib.GP_U8 else np.float32)
    status = lib.gp_stack_run_typed(stack, ffi.from_buffer(source), in_code, batch, ffi.from_buffer(result), out_code)
    in_range = bool(np.all((source >= np.float32(-1.000001)) & (source <= np.float32(1.000001))))
    if in_code not in (lib.GP_F32, lib.GP_U8, lib.GP_F32_IMAGE, lib.GP_F32_FINITE) or out_code not in (lib.GP_F32,
                                                                                                    lib.GP_U8):
        assert status == lib.GP_ERR_ARGUMENT, status
    elif (in_code == lib.GP_F32_IMAGE and not in_range) or (in_code == lib.GP_F32_FINITE
                                                             and not np.isfinite(source).all()):
        assert status == lib.GP_ERR_INPUT, status
    else:
        assert status == lib.GP_OK, status
        as_float = source if in_code != lib.GP_U8 else pixels.astype(np.float32) / np.float32(127.5) - np.float32(1)
        plain = np.empty(floats.shape, np.float32)
        assert lib.gp_stack_run(stack, ffi.from_buffer("float[]", np.ascontiguousarray(as_float)), batch,
                                ffi.from_buffer("float[]", plain)) == lib.GP_OK
        expected = plain if out_code == lib.GP_F32 else to_uint8(plain)
        assert np.array_equal(result.view(np.uint8), expected.view(np.uint8)), (widths, in_code, out_code, batch)
    seed = data.ConsumeIntInRange(0, 2 ** 64 - 1)
    first_row = data.ConsumeIntInRange(-1, 2 ** 63 - 1)
    distribution = data.ConsumeIntInRange(-1, 2)
    scale = float(np.float32(data.ConsumeFloat())) if data.ConsumeBool() else 1.0
    offset = float(np.float32(data.ConsumeFloat())) if data.ConsumeBool() else 0.0
    sampled = np.full(floats.shape, 7, np.float32)
    status = lib.gp_stack_sample(stack, seed, first_row, batch, distribution, scale, offset,
                                 ffi.from_buffer(sampled), lib.GP_F32)
    valid_rows = first_row >= 0 and first_row <= 2 ** 63 - 1 - batch
    if not valid_rows:
        assert status == lib.GP_ERR_SHAPE, status
    elif distribution not in (0, 1) or not (np.isfinite(scale) and np.isfinite(offset)):
        assert status == lib.GP_ERR_ARGUMENT, status
    else:
        assert status == lib.GP_OK, status
        z = np.empty((batch, widths[0]), np.float32)
        assert lib.gp_latents(seed, first_row, batch, widths[0], distribution, scale, offset,
                              ffi.from_buffer("float[]", z)) == lib.GP_OK
        plain = np.empty(floats.shape, np.float32)
        status = lib.gp_stack_run(stack, ffi.from_buffer("float[]", z), batch, ffi.from_buffer("float[]", plain))
        assert status == lib.GP_OK
        assert np.array_equal(sampled.view(np.uint32), plain.view(np.uint32)), (widths, seed, first_row, batch)


def fuzz_labels(data, stack, widths, batch, x, weight0, code0, alpha0, precision0) -> None:
    """A class-bias table and labelled runs: statuses, and each row bit for bit the row of an
    unlabelled run whose layer 0 has its label's table row as bias (layer 0 is replaced for that:
    this is the stack's last use)."""
    n_classes = data.ConsumeIntInRange(-1, 6) if data.ConsumeBool() else 65537
    labels = np.array([data.ConsumeIntInRange(0, max(n_classes, 1) - 1) for _ in range(batch)], np.int32)
    if batch and data.ConsumeProbability() < 0.2:  # one label out of range
        bad = [-1, max(n_classes, 1), 2 ** 31 - 1][data.ConsumeIntInRange(0, 2)]
        labels[data.ConsumeIntInRange(0, batch - 1)] = bad
    out = np.full((batch, widths[-1]), -7.0, np.float32)

    def run_labels():
        return lib.gp_stack_run_labels(stack, ffi.from_buffer("float[]", x), lib.GP_F32,
                                       ffi.from_buffer("int32_t[]", labels), batch, ffi.from_buffer("float[]", out),
                                       lib.GP_F32)

    assert run_labels() == lib.GP_ERR_INCOMPLETE  # no table yet
    table = np.random.default_rng(batch).normal(size=(max(min(n_classes, 6), 1), widths[1])).astype(np.float32)
    status = lib.gp_stack_set_class_bias(stack, n_classes, ffi.from_buffer("float[]", table))
    if not 1 <= n_classes <= 6:
        assert status == lib.GP_ERR_SHAPE and lib.gp_stack_classes(stack) == 0, (status, n_classes)
        return
    assert status == lib.GP_OK and lib.gp_stack_classes(stack) == n_classes, status
    status = run_labels()
    if ((labels < 0) | (labels >= n_classes)).any():
        assert status == lib.GP_ERR_INPUT and (out == -7.0).all(), status  # refused before any work
        return
    assert status == lib.GP_OK, status
    expected = np.empty_like(out)
    for label in np.unique(labels):
        plain = np.empty_like(out)
        assert lib.gp_stack_set_layer_precision(stack, 0, ffi.from_buffer("float[]", weight0),
                                                ffi.from_buffer("float[]", table[label]), code0, alpha0,
                                                precision0) == lib.GP_OK
        assert lib.gp_stack_run(stack, ffi.from_buffer("float[]", x), batch, ffi.from_buffer("float[]", plain)) == 0
        expected[labels == label] = plain[labels == label]
    assert lib.gp_stack_classes(stack) == n_classes  # the table outlives the replaced layer 0
    assert np.array_equal(out.view(np.uint32), expected.view(np.uint32)), (widths, n_classes, labels)


def fuzz_python_api(data: atheris.FuzzedDataProvider) -> None:
    widths = [data.ConsumeIntInRange(1, 64) for _ in range(data.ConsumeIntInRange(2, 4))]
    layers = [Layer(np.zeros((b, a), np.float32), np.zeros(b, np.float32), ACTIVATIONS[data.ConsumeIntInRange(0, 4)],
                    0.1) for a, b in zip(widths[:-1], widths[1:])]
    native = NativeStack(DenseStack(layers, "x", {"y": "activated"}), threads=data.ConsumeIntInRange(0, 3))
    dtype = [np.float32, np.float64, np.int32, np.uint8][data.ConsumeIntInRange(0, 3)]
    shape = tuple(data.ConsumeIntInRange(0, 70) for _ in range(data.ConsumeIntInRange(0, 3)))
    x = np.zeros(shape, dtype)
    if data.ConsumeBool() and x.ndim == 2:
        x = x[:, ::2]
    try:
        out = native.run(x)
    except BackendError:
        return
    assert x.dtype in (np.float32, np.uint8) and x.ndim == 2 and x.shape[1] == widths[0]
    assert out.shape == (len(x), widths[-1]) and out.dtype == np.float32


def test_one_input(raw: bytes) -> None:
    data = atheris.FuzzedDataProvider(raw)
    if data.ConsumeBool():
        fuzz_c_api(data)
    else:
        fuzz_python_api(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
