"""PyTorch networks -> plain ONNX graphs (Gemm, LeakyRelu, Tanh, Sigmoid), weights inside.

The graphs' tensor names, which the manifest records (a runtime reads them from the graph):
  generator.onnx:     z (batch, latent_dim) -> image (batch, 784)
  discriminator.onnx: image (batch, 784) -> probability (batch, 1), logit (batch, 1)
A conditional model's graphs also take label (batch, classes), one-hot float32, concatenated after
z or the image (one Concat node, then the same chain).
"""

import io
import warnings

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from ganpack.contract import CLASS_INPUT
from training.model import balanced_labels

OPSET = 17
EXAMPLE_BATCH = 2  # >= 2, so the exporter cannot specialise the batch axis to 1
ALLOWED_OPS = {"Gemm", "MatMul", "Add", "LeakyRelu", "Tanh", "Sigmoid", "Concat"}
GENERATOR_INPUT, GENERATOR_OUTPUT = "z", "image"
LABEL_INPUT = CLASS_INPUT  # a conditional model's second input, in both graphs
DISCRIMINATOR_INPUT, DISCRIMINATOR_OUTPUTS = "image", ("probability", "logit")


class GeneratorGraph(nn.Module):
    """The generator without its logits output: the package exposes the image only."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z, label=None):
        image, _ = self.generator(z, label)
        return image


def export_graph(module: nn.Module, example: tuple[torch.Tensor, ...], inputs: list[str], outputs: list[str]
                 ) -> bytes:
    """Serialize `module` to an ONNX model with a dynamic batch axis on every input and output."""
    module = module.eval()
    dynamic = {name: {0: "batch"} for name in inputs + outputs}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose (dynamo=False): it emits exactly the
        # plain Gemm / activation chain our runtimes read, and needs no extra packages.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, example, buffer, dynamo=False, export_params=True,
                          external_data=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=inputs, output_names=outputs, dynamic_axes=dynamic)
    model = onnx.load_from_string(buffer.getvalue())
    unexpected = {node.op_type for node in model.graph.node} - ALLOWED_OPS
    if unexpected:
        raise RuntimeError(f"exported graph uses operators outside the plain dense set: {sorted(unexpected)}")
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def one_hot_rows(count: int, classes: int) -> torch.Tensor:
    """(count, classes) float32 one-hot rows of classes 0, 1, ..., 0, 1, ...: every class in turn,
    the `label` input a conditional graph takes."""
    return F.one_hot(balanced_labels(count, classes), classes).float()


def _inputs(first: str, width: int, classes: int) -> tuple[tuple[torch.Tensor, ...], list[str]]:
    """Example inputs and their names: `first` (batch, width), then a conditional model's labels."""
    example, names = (torch.zeros(EXAMPLE_BATCH, width),), [first]
    if classes:
        example, names = (*example, one_hot_rows(EXAMPLE_BATCH, classes)), [first, LABEL_INPUT]
    return example, names


def export_generator(generator: nn.Module, latent_dim: int, classes: int = 0) -> bytes:
    example, names = _inputs(GENERATOR_INPUT, latent_dim, classes)
    return export_graph(GeneratorGraph(generator), example, names, [GENERATOR_OUTPUT])


def export_discriminator(discriminator: nn.Module, image_dim: int, classes: int = 0) -> bytes:
    example, names = _inputs(DISCRIMINATOR_INPUT, image_dim, classes)
    return export_graph(discriminator, example, names, list(DISCRIMINATOR_OUTPUTS))
