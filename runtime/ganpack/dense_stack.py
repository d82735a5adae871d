"""ONNX graph -> a dense stack: the one form every ganpack backend runs.

A dense stack is a chain of layers y = act(x W^T + b). The graph must be exactly such a chain
from its single input: Gemm (or MatMul then Add), optionally followed by one activation
(LeakyRelu, Relu, Tanh, Sigmoid). Any other operator, attribute or wiring is refused with an
UnsupportedGraphError naming the first node that does not fit: never silently ignored.

A class-conditional graph has two inputs, x and the one-hot labels (batch, classes), and starts
with Concat(axis=1) of exactly [x, labels]; the chain then reads the concatenation, so layer 0's
weight is (out, x width + classes) and its last `classes` columns are the labels' (W_y).
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ganpack.contract import IDENTITY, LEAKY_RELU, RELU, SIGMOID, TANH
from ganpack.errors import PackageError

if TYPE_CHECKING:  # onnx is imported only when a graph is read
    import onnx

ACTIVATIONS = {"LeakyRelu": LEAKY_RELU, "Relu": RELU, "Tanh": TANH, "Sigmoid": SIGMOID}  # ONNX op -> our name


class UnsupportedGraphError(PackageError):
    """An ONNX graph that is not a plain dense stack."""


@dataclass
class Layer:
    weight: npt.NDArray[np.float32]  # (out, in), C-contiguous
    bias: npt.NDArray[np.float32]  # (out,)
    activation: str  # one of ganpack.contract.ACTIVATIONS
    alpha: float = 0.0  # leaky_relu slope


@dataclass
class DenseStack:
    layers: list[Layer]
    input_name: str
    # graph output name -> "activated" (the last layer's activation applied) or "logits" (before it)
    outputs: dict[str, str]
    label_name: str | None = None  # a conditional graph's second input, one-hot (batch, classes)
    classes: int = 0  # its width: the last `classes` columns of layers[0].weight; 0 when unconditional

    @property
    def widths(self) -> list[int]:
        """Layer widths as the manifest's layer_widths gives them: widths[0] includes the one-hot columns."""
        return [self.layers[0].weight.shape[1]] + [layer.weight.shape[0] for layer in self.layers]

    @property
    def input_width(self) -> int:
        """The width of the input `input_name` itself (widths[0] less the one-hot columns)."""
        return self.widths[0] - self.classes

    def class_bias(self) -> npt.NDArray[np.float32]:
        """A conditional stack's labels as the C kernel, the ganpack-c file and the web page take them:
        W [x; onehot(c)] + b = W_x x + (W_y[:, c] + b), so row c of this (classes, widths[1]) float32
        table, W_y^T + b, is the bias layer 0 uses for label c (its weight keeps W_x, the first
        input_width columns). One expression, so that every consumer holds the same bits."""
        first = self.layers[0]
        return np.ascontiguousarray(first.weight[:, self.input_width:].T + first.bias, dtype=np.float32)


def _attributes(node: "onnx.NodeProto") -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _check_attributes(node: "onnx.NodeProto", allowed: dict[str, object]) -> dict[str, Any]:
    """Attributes must be known, and those with a required value must have it."""
    values = _attributes(node)
    for name, value in values.items():
        if name not in allowed:
            raise UnsupportedGraphError(f"node '{node.name}' ({node.op_type}): attribute '{name}' is not supported")
        required = allowed[name]
        if required is not None and value != required:
            raise UnsupportedGraphError(f"node '{node.name}' ({node.op_type}): {name}={value} is not supported "
                                        f"(only {required})")
    return values


def from_onnx(model: "onnx.ModelProto") -> DenseStack:
    """Convert an onnx.ModelProto into a DenseStack (weights copied out as float32)."""
    from onnx import numpy_helper

    graph = model.graph
    for init in graph.initializer:
        if init.data_location == init.EXTERNAL or init.external_data:
            # a path written inside the graph: never followed (a package is self-contained)
            raise UnsupportedGraphError(f"initializer '{init.name}' keeps its data in an external file")
    try:
        initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    except (ValueError, TypeError, KeyError) as error:  # dims that do not match the data, unknown types
        raise UnsupportedGraphError(f"an initializer cannot be read: {error}") from None
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(inputs) not in (1, 2):
        raise UnsupportedGraphError(f"a dense stack has one input (two with class labels), this graph has "
                                    f"{len(inputs)}: {inputs}")
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):  # a node reading a tensor twice consumes it once
            consumers.setdefault(name, []).append(node)

    def only_consumer(tensor: str) -> "onnx.NodeProto | None":
        nodes = consumers.get(tensor, [])
        if len(nodes) > 1:
            raise UnsupportedGraphError(f"tensor '{tensor}' feeds {len(nodes)} nodes; a dense stack is a chain "
                                        f"(first: '{nodes[1].name}' ({nodes[1].op_type}))")
        return nodes[0] if nodes else None

    def weight_of(node: "onnx.NodeProto", name: str) -> npt.NDArray[np.float32]:
        if name not in initializers:
            raise UnsupportedGraphError(f"node '{node.name}' ({node.op_type}): '{name}' is not a constant weight")
        weight: npt.NDArray[np.float32] = initializers[name].astype(np.float32)
        if not np.isfinite(weight).all():  # a corrupt package: every backend would give NaN, each its own way
            raise UnsupportedGraphError(f"node '{node.name}' ({node.op_type}): weight '{name}' holds a non-finite "
                                        "value (nan or inf)")
        return weight

    layers: list[Layer] = []
    visited: set[int] = set()  # id() of every node the chain walked through
    label_name, classes = None, 0
    if len(inputs) == 2:  # conditional: Concat(axis=1) of [x, labels] first
        concat = _leading_concat(inputs, only_consumer)
        visited.add(id(concat))
        input_name, label_name = concat.input[0], concat.input[1]
        classes = _label_width(graph, label_name)
        tensor = concat.output[0]
    else:
        input_name = tensor = inputs[0]
    logits_tensor = None
    node = only_consumer(tensor)
    while node is not None:
        visited.add(id(node))
        if node.op_type == "Gemm":
            attrs = _check_attributes(node, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": None})
            if len(node.input) != 3 or node.input[0] != tensor:
                raise UnsupportedGraphError(f"node '{node.name}' (Gemm): expected input, weight and bias")
            weight = weight_of(node, node.input[1])
            weight = weight if attrs.get("transB", 0) == 1 else weight.T  # always (out, in)
            bias = weight_of(node, node.input[2])
        elif node.op_type == "MatMul":
            _check_attributes(node, {})
            weight = weight_of(node, node.input[1]).T  # MatMul weights are (in, out)
            add = only_consumer(node.output[0])
            if add is None or add.op_type != "Add":
                found = f"'{add.name}' ({add.op_type})" if add is not None else "nothing"
                raise UnsupportedGraphError(f"MatMul '{node.name}' must be followed by Add, found {found}")
            _check_attributes(add, {})
            bias_name = add.input[1] if add.input[0] == node.output[0] else add.input[0]
            bias = weight_of(add, bias_name)
            node = add
            visited.add(id(node))
        else:
            raise UnsupportedGraphError(f"unsupported operator {node.op_type} (node '{node.name}'); "
                                        "a dense stack has Gemm or MatMul+Add, then LeakyRelu, Relu, Tanh or Sigmoid")
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise UnsupportedGraphError(f"node '{node.name}': weight {weight.shape} and bias {bias.shape} do not fit")
        if layers and weight.shape[1] != layers[-1].weight.shape[0]:
            raise UnsupportedGraphError(f"node '{node.name}': input width {weight.shape[1]} does not follow "
                                        f"the previous layer's {layers[-1].weight.shape[0]}")
        if not layers and weight.shape[1] <= classes:
            raise UnsupportedGraphError(f"node '{node.name}': input width {weight.shape[1]} leaves no columns "
                                        f"for '{input_name}' beside the {classes} of '{label_name}'")
        logits_tensor = node.output[0]
        layer = Layer(np.ascontiguousarray(weight), np.ascontiguousarray(bias), IDENTITY)
        tensor, node = node.output[0], only_consumer(node.output[0])
        if node is not None and node.op_type in ACTIVATIONS:
            attrs = _check_attributes(node, {"alpha": None} if node.op_type == "LeakyRelu" else {})
            layer.activation = ACTIVATIONS[node.op_type]
            layer.alpha = float(attrs.get("alpha", 0.01)) if node.op_type == "LeakyRelu" else 0.0
            if not 0.0 <= layer.alpha < 1.0:
                raise UnsupportedGraphError(f"node '{node.name}' (LeakyRelu): alpha {layer.alpha} is outside [0, 1)")
            visited.add(id(node))
            tensor, node = node.output[0], only_consumer(node.output[0])
        layers.append(layer)
    if not layers:
        raise UnsupportedGraphError("the graph has no layers")
    stray = [n for n in graph.node if id(n) not in visited]
    if stray:
        raise UnsupportedGraphError(f"unsupported node '{stray[0].name}' ({stray[0].op_type}) outside the dense chain")
    outputs: dict[str, str] = {}
    for output in graph.output:
        if output.name == tensor:
            outputs[output.name] = "activated"
        elif output.name == logits_tensor:
            outputs[output.name] = "logits"
        else:
            raise UnsupportedGraphError(f"graph output '{output.name}' is not the stack's output or its logits")
    return DenseStack(layers, input_name, outputs, label_name, classes)


def _leading_concat(inputs: list[str], only_consumer: Callable[[str], "onnx.NodeProto | None"]) -> "onnx.NodeProto":
    """The Concat(axis=1) of exactly the graph's two inputs that a conditional graph starts with; its
    order, [x, labels], says which is which. Anything else is refused, naming the node."""
    found = [only_consumer(name) for name in inputs]
    for name, node in zip(inputs, found, strict=True):
        if node is None or node.op_type != "Concat":
            what = f"node '{node.name}' ({node.op_type})" if node is not None else "nothing"
            raise UnsupportedGraphError(f"a graph with two inputs {inputs} must start with one Concat of both "
                                        f"(axis 1); input '{name}' feeds {what}")
    concat = found[0]
    assert concat is not None and found[1] is not None  # for mypy: both checked above
    if concat is not found[1]:
        raise UnsupportedGraphError(f"inputs {inputs} feed two Concat nodes, '{concat.name}' and '{found[1].name}'; "
                                    "a conditional graph starts with one Concat of both")
    if _check_attributes(concat, {"axis": 1}).get("axis") != 1:
        raise UnsupportedGraphError(f"node '{concat.name}' (Concat): axis must be given, and 1")
    if len(concat.input) != 2 or len(set(concat.input)) != 2 or len(concat.output) != 1:
        raise UnsupportedGraphError(f"node '{concat.name}' (Concat): expected the two graph inputs once each, "
                                    f"got {list(concat.input)}")
    return concat


def _label_width(graph: "onnx.GraphProto", name: str) -> int:
    """The labels' width, from the graph input's declared type: float32 (batch, classes)."""
    from onnx import TensorProto

    (value,) = [i for i in graph.input if i.name == name]
    tensor = value.type.tensor_type
    dims = tensor.shape.dim
    if (tensor.elem_type != TensorProto.FLOAT or len(dims) != 2 or not dims[1].HasField("dim_value")
            or dims[1].dim_value < 1):
        raise UnsupportedGraphError(f"input '{name}' must be float32 of shape (batch, classes), the number of "
                                    "classes fixed")
    return int(dims[1].dim_value)


def load_dense_stack(path: str | os.PathLike[str]) -> DenseStack:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)  # never read files the graph names
    except Exception as error:  # protobuf decode errors have no common base we can name
        raise PackageError(f"{path}: not a readable ONNX model: {error}") from None
    try:
        return from_onnx(model)
    except UnsupportedGraphError as error:
        raise UnsupportedGraphError(f"{path}: {error}") from None
    except (IndexError, ValueError, TypeError, KeyError, AttributeError) as error:  # a damaged but parseable graph
        raise UnsupportedGraphError(f"{path}: malformed graph: {type(error).__name__}: {error}") from None
