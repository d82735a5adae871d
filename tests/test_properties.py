"""Property-based tests (hypothesis): random dense stacks, widths 1 to 1,024, random activations
and alphas, random batch sizes and input layouts.

- ONNX -> dense stack: any chain written as Gemm (either weight layout) or MatMul+Add converts to
  exactly the layers it was built from, and onnxruntime running the graph agrees with numpy.
- The C kernel, on every instruction set this CPU has, agrees with numpy (float64) on any stack,
  batch size and input layout: contiguous, strided views and misaligned buffers; and the
  portable path alone does, on as many examples.
"""

import numpy as np
import onnxruntime
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from ganpack.backends.numpy_backend import NumpyBackend
from ganpack.dense_stack import DenseStack, Layer, from_onnx

kernel = pytest.importorskip("ganpack.backends.c_backend", reason="the C kernel is not built")
ISAS = [name for name, code in (("portable", 0), ("avx2_fma", 1), ("avx512", 2)) if code <= kernel.lib.gp_best_isa()]
ACTIVATIONS = ["identity", "leaky_relu", "relu", "tanh", "sigmoid"]
ONNX_OPS = {"leaky_relu": "LeakyRelu", "relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

widths_strategy = st.lists(st.integers(1, 1024), min_size=2, max_size=4)
layer_strategy = st.tuples(st.sampled_from(ACTIVATIONS), st.floats(0.0, 0.99),
                           st.sampled_from(["gemm_t", "gemm", "matmul"]))


@st.composite
def stacks(draw):
    """(DenseStack, how each layer is written in ONNX) with weights scaled to keep values O(1)."""
    widths = draw(widths_strategy)
    specs = [draw(layer_strategy) for _ in widths[1:]]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    layers = []
    for (fan_in, fan_out), (activation, alpha, _) in zip(zip(widths[:-1], widths[1:]), specs):
        weight = rng.normal(0, 1 / np.sqrt(fan_in), (fan_out, fan_in)).astype(np.float32)
        bias = rng.normal(0, 0.1, fan_out).astype(np.float32)
        layers.append(Layer(weight, bias, activation, np.float32(alpha).item() if activation == "leaky_relu" else 0.0))
    return DenseStack(layers, "x", {"y": "activated"}), [form for _, _, form in specs]


def to_onnx(stack: DenseStack, forms: list):
    nodes, initializers, tensor = [], [], "x"
    for index, (layer, form) in enumerate(zip(stack.layers, forms)):
        w, b, out = f"w{index}", f"b{index}", f"t{index}"
        if form == "gemm_t":  # (out, in), as PyTorch exports
            initializers.append(numpy_helper.from_array(layer.weight, w))
            nodes.append(helper.make_node("Gemm", [tensor, w, b], [out], name=f"gemm{index}", transB=1))
        elif form == "gemm":  # (in, out)
            initializers.append(numpy_helper.from_array(np.ascontiguousarray(layer.weight.T), w))
            nodes.append(helper.make_node("Gemm", [tensor, w, b], [out], name=f"gemm{index}"))
        else:
            initializers.append(numpy_helper.from_array(np.ascontiguousarray(layer.weight.T), w))
            nodes.append(helper.make_node("MatMul", [tensor, w], [f"m{index}"], name=f"matmul{index}"))
            nodes.append(helper.make_node("Add", [f"m{index}", b], [out], name=f"add{index}"))
        initializers.append(numpy_helper.from_array(layer.bias, b))
        tensor = out
        if layer.activation != "identity":
            attributes = {"alpha": layer.alpha} if layer.activation == "leaky_relu" else {}
            nodes.append(helper.make_node(ONNX_OPS[layer.activation], [tensor], [f"a{index}"], name=f"act{index}",
                                          **attributes))
            tensor = f"a{index}"
    widths = stack.widths
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", widths[0]])]
    graph = helper.make_graph(nodes, "stack", inputs,
                              [helper.make_tensor_value_info(tensor, TensorProto.FLOAT, ["batch", widths[-1]])],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def reference(stack: DenseStack, x: np.ndarray) -> np.ndarray:
    """The stack in float64."""
    x = x.astype(np.float64)
    for layer in stack.layers:
        z = x @ layer.weight.astype(np.float64).T + layer.bias
        x = {"identity": z, "relu": np.maximum(z, 0), "leaky_relu": np.maximum(layer.alpha * z, z),
             "tanh": np.tanh(z), "sigmoid": 1 / (1 + np.exp(-z))}[layer.activation]
    return x


def close(actual: np.ndarray, expected: np.ndarray) -> bool:
    return actual.shape == expected.shape and np.abs(actual - expected).max(initial=0) <= 2e-5 * max(
        1.0, np.abs(expected).max(initial=0))


@pytest.mark.slow
@PROPERTY
@given(built=stacks(), batch=st.integers(1, 40), seed=st.integers(0, 1000))
def test_onnx_chains_convert_to_the_layers_they_were_built_from(built, batch, seed):
    stack, forms = built
    model = to_onnx(stack, forms)
    converted = from_onnx(model)
    assert converted.widths == stack.widths
    for got, want in zip(converted.layers, stack.layers):
        assert got.activation == want.activation and got.alpha == pytest.approx(want.alpha, abs=1e-7)
        assert np.array_equal(got.weight, want.weight) and np.array_equal(got.bias, want.bias)
        assert got.weight.flags.c_contiguous
    x = np.random.default_rng(seed).normal(size=(batch, stack.widths[0])).astype(np.float32)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"x": x})
    expected = reference(stack, x)
    assert close(onnx_out, expected) and close(NumpyBackend(converted).run(x)["activated"], expected)


def layouts(x: np.ndarray, how: str) -> np.ndarray:
    """The same values, laid out differently in memory."""
    if how == "strided":  # every other row of a larger array: not C-contiguous
        wide = np.zeros((2 * len(x), x.shape[1]), np.float32)
        wide[::2] = x
        return wide[::2]
    if how == "fortran":
        return np.asfortranarray(x)
    if how == "misaligned":  # C-contiguous float32 starting 1 byte past an aligned address
        buffer = np.zeros(x.nbytes + 1, np.uint8)
        view = buffer[1:].view(np.float32).reshape(x.shape)
        view[...] = x
        assert not view.flags.aligned or x.size == 0
        return view
    return x


def check_c_kernel(built, batch, isa, threads, layout, seed):
    stack, _ = built
    native = kernel.NativeStack(stack, isa, threads=threads)
    x = np.random.default_rng(seed).normal(size=(batch, stack.widths[0])).astype(np.float32)
    arranged = layouts(x, layout)
    if not arranged.flags.c_contiguous:
        with pytest.raises(kernel.BackendError, match="C-contiguous"):
            native.run(arranged)
        arranged = np.ascontiguousarray(arranged)  # what ganpack.Model does for the caller
    assert close(native.run(arranged), reference(stack, x))


LAYOUTS = st.sampled_from(["contiguous", "strided", "fortran", "misaligned"])


@PROPERTY
@given(built=stacks(), batch=st.integers(0, 300), isa=st.sampled_from(ISAS), threads=st.sampled_from([1, 2, 3]),
       layout=LAYOUTS, seed=st.integers(0, 1000))
@pytest.mark.slow
def test_c_kernel_matches_numpy_on_any_stack_batch_and_layout(built, batch, isa, threads, layout, seed):
    check_c_kernel(built, batch, isa, threads, layout, seed)


@PROPERTY
@given(built=stacks(), batch=st.integers(0, 300), threads=st.sampled_from([1, 2, 3]), layout=LAYOUTS,
       seed=st.integers(0, 1000))
@pytest.mark.slow
def test_portable_path_alone_matches_numpy(built, batch, threads, layout, seed):
    """The portable path only (the forced-ISA switch), on every example: what ARM64 and any x86 CPU
    without AVX2 run. The test above spreads its examples over every ISA this CPU has."""
    check_c_kernel(built, batch, "portable", threads, layout, seed)
