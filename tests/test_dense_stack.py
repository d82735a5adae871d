"""ONNX graph -> dense stack: exported graphs convert; anything that is not a plain chain is
refused with an error naming the first unsupported operator or attribute."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from ganpack.backends.numpy_backend import NumpyBackend
from ganpack.dense_stack import UnsupportedGraphError, from_onnx, load_dense_stack
from packages import make_package

RNG = np.random.default_rng(0)


def graph(nodes, weights: dict, output="y", inputs=("x", 4), outputs_width=3):
    initializers = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(inputs[0], TensorProto.FLOAT, ["batch", inputs[1]])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", outputs_width])], initializers),
        opset_imports=[helper.make_opsetid("", 17)])
    return model


def test_exported_graphs_convert(tmp_path):
    path, _, _ = make_package(tmp_path / "pkg", "three_layers")
    generator = load_dense_stack(path / "generator.onnx")
    assert generator.widths == [100, 128, 256, 784]
    assert [layer.activation for layer in generator.layers] == ["leaky_relu", "leaky_relu", "tanh"]
    assert generator.layers[0].alpha == pytest.approx(0.01)
    assert generator.outputs == {"image": "activated"}
    discriminator = load_dense_stack(path / "discriminator.onnx")
    assert discriminator.outputs == {"probability": "activated", "logit": "logits"}


def test_matmul_add_and_untransposed_gemm():
    w1, b1, w2, b2 = RNG.normal(size=(4, 5)), RNG.normal(size=5), RNG.normal(size=(5, 3)), RNG.normal(size=3)
    model = graph([helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm"),
                   helper.make_node("Add", ["h", "b1"], ["a"], name="add"),
                   helper.make_node("Relu", ["a"], ["r"], name="relu"),
                   helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="gemm", transB=0)],
                  {"w1": w1, "b1": b1, "w2": w2, "b2": b2})
    stack = from_onnx(model)
    assert stack.widths == [4, 5, 3] and [layer.activation for layer in stack.layers] == ["relu", "identity"]
    x = RNG.normal(size=(6, 4)).astype(np.float32)
    expected = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    assert np.allclose(NumpyBackend(stack).run(x)["activated"], expected, atol=1e-5)


@pytest.mark.parametrize("case, message", [
    ("softmax", "unsupported operator Softmax"),
    ("conv", "unsupported operator Conv"),
    ("gemm_alpha", "alpha=2.0 is not supported"),
    ("unknown_attribute", "attribute 'foo' is not supported"),
    ("branch", "feeds 2 nodes"),
    ("weight_input", "not a constant weight"),
    ("leaky_alpha", "outside \\[0, 1\\)"),
])
def test_non_dense_graphs_are_refused(case, message):
    w, b = RNG.normal(size=(3, 4)), RNG.normal(size=3)
    weights = {"w": w, "b": b}
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="gemm", transB=1)
    nodes = {
        "softmax": [gemm, helper.make_node("Softmax", ["h"], ["y"], name="soft")],
        "conv": [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        "gemm_alpha": [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="g2", transB=1, alpha=2.0)],
        "unknown_attribute": [gemm, helper.make_node("Tanh", ["h"], ["y"], name="t", foo=1)],
        "branch": [gemm, helper.make_node("Tanh", ["h"], ["y"], name="t"),
                   helper.make_node("Relu", ["h"], ["z"], name="r")],
        "weight_input": [helper.make_node("Gemm", ["x", "x", "b"], ["y"], name="g3", transB=1)],
        "leaky_alpha": [gemm, helper.make_node("LeakyRelu", ["h"], ["y"], name="l", alpha=1.5)],
    }[case]
    with pytest.raises(UnsupportedGraphError, match=message):
        from_onnx(graph(nodes, weights))


def test_unreadable_onnx_file_is_a_package_error(tmp_path):
    from ganpack.errors import PackageError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not protobuf" * 10)
    with pytest.raises(PackageError, match="bad.onnx"):
        load_dense_stack(bad)
