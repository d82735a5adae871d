"""The pure-numpy reference backend: x @ W^T + b, then the activation, layer by layer.

A conditional stack's rows are literally [x, onehot(labels)], as its ONNX graph concatenates
them: the reference stays the graph, op for op. With precision="bf16" the weights are rounded to
bf16 first (ganpack.precision): the reference of every bf16 backend."""

from pathlib import Path

import numpy as np

from ganpack.backends import activations, check_labels
from ganpack.backends.chunked import Chunked
from ganpack.contract import one_hot
from ganpack.dense_stack import DenseStack
from ganpack.latents import Stream
from ganpack.precision import FP32, at_precision


class NumpyBackend(Chunked):
    name = "numpy"

    def __init__(self, stack: DenseStack, onnx_path: Path | str | None = None, threads: int | None = None,
                 precision: str = FP32, stream: Stream | None = None) -> None:
        # threads: numpy's matrix products use its BLAS's own thread pool; not set per model.
        # bf16: the weights rounded to bf16, then the same float32 math (the reference of the C kernel's bf16)
        stack = at_precision(stack, precision)
        self.stack, self.stream = stack, stream
        self.out_width = stack.widths[-1]
        self.transposed = [np.ascontiguousarray(layer.weight.T) for layer in stack.layers]  # (in, out)

    def run(self, x: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """x (batch, input_width) float32 [, labels (batch,)] -> {"logits", "activated"} (batch, widths[-1])."""
        check_labels(self.stack, labels)
        if labels is not None:
            x = np.concatenate([x, one_hot(labels, self.stack.classes)], axis=1)  # (batch, widths[0])
        for layer, weight_t in zip(self.stack.layers, self.transposed, strict=True):
            logits = x @ weight_t + layer.bias
            x = activations.apply(logits, layer.activation, layer.alpha)
        return {"logits": logits, "activated": x}
