"""The onnxruntime backend: an InferenceSession over the package's own .onnx file."""

from pathlib import Path

import numpy as np
import onnxruntime

from ganpack.backends import BackendError, check_labels
from ganpack.backends.chunked import Chunked
from ganpack.contract import one_hot
from ganpack.dense_stack import DenseStack
from ganpack.errors import PackageError
from ganpack.latents import Stream
from ganpack.precision import FP32


class OnnxRuntimeBackend(Chunked):
    name = "onnxruntime"

    def __init__(self, stack: DenseStack, onnx_path: Path | str | None, threads: int | None = None,
                 precision: str = FP32, stream: Stream | None = None) -> None:
        if precision != FP32:  # the graph's own float32 weights: Model never asks for another
            raise BackendError(f"backend 'onnxruntime' runs float32 weights only, not {precision!r}")
        self.stack, self.stream = stack, stream
        self.out_width = stack.widths[-1]
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's Fail, InvalidGraph, ... share no base we can name
            raise PackageError(f"{onnx_path}: onnxruntime cannot load it: {error}") from None
        self.output_names = list(stack.outputs)  # graph output name -> "activated" / "logits"

    def run(self, x: np.ndarray, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """InferenceSession.run is safe to call from several threads at once. A conditional graph
        gets its labels one-hot, float32, as its own second input."""
        feed = {self.stack.input_name: x}
        check_labels(self.stack, labels)
        if labels is not None and self.stack.label_name is not None:
            feed[self.stack.label_name] = one_hot(labels, self.stack.classes)
        values = self.session.run(self.output_names, feed)
        return {self.stack.outputs[name]: value for name, value in zip(self.output_names, values, strict=True)}
