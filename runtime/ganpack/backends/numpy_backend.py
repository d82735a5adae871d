"""The pure-numpy reference backend: x @ W^T + b, then the activation, layer by layer."""

from pathlib import Path

import numpy as np

from ganpack.backends import activations
from ganpack.dense_stack import DenseStack


class NumpyBackend:
    name = "numpy"

    def __init__(self, stack: DenseStack, onnx_path: Path | str | None = None, threads: int | None = None) -> None:
        # threads: numpy's matrix products use its BLAS's own thread pool; not set per model
        self.stack = stack
        self.out_width = stack.widths[-1]
        self.transposed = [np.ascontiguousarray(layer.weight.T) for layer in stack.layers]  # (in, out)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """x (batch, widths[0]) float32 -> {"logits", "activated"} (batch, widths[-1])."""
        for layer, weight_t in zip(self.stack.layers, self.transposed, strict=True):
            logits = x @ weight_t + layer.bias
            x = activations.apply(logits, layer.activation, layer.alpha)
        return {"logits": logits, "activated": x}
