"""PyTorch networks -> plain ONNX graphs (Gemm, LeakyRelu, Tanh, Sigmoid), weights inside.

The graphs' tensor names, which the manifest records (a runtime reads them from the graph):
  generator.onnx:     z (batch, latent_dim) -> image (batch, 784)
  discriminator.onnx: image (batch, 784) -> probability (batch, 1), logit (batch, 1)
"""

import io
import warnings

import onnx
import torch
from torch import nn

OPSET = 17
EXAMPLE_BATCH = 2  # >= 2, so the exporter cannot specialise the batch axis to 1
ALLOWED_OPS = {"Gemm", "MatMul", "Add", "LeakyRelu", "Tanh", "Sigmoid"}
GENERATOR_INPUT, GENERATOR_OUTPUT = "z", "image"
DISCRIMINATOR_INPUT, DISCRIMINATOR_OUTPUTS = "image", ("probability", "logit")


class GeneratorGraph(nn.Module):
    """The generator without its logits output: the package exposes the image only."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z):
        image, _ = self.generator(z)
        return image


def export_graph(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str]) -> bytes:
    """Serialize `module` to an ONNX model with a dynamic batch axis on every input and output."""
    module = module.eval()
    dynamic = {name: {0: "batch"} for name in inputs + outputs}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose (dynamo=False): it emits exactly the
        # plain Gemm / activation chain our runtimes read, and needs no extra packages.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (example,), buffer, dynamo=False, export_params=True,
                          external_data=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=inputs, output_names=outputs, dynamic_axes=dynamic)
    model = onnx.load_from_string(buffer.getvalue())
    unexpected = {node.op_type for node in model.graph.node} - ALLOWED_OPS
    if unexpected:
        raise RuntimeError(f"exported graph uses operators outside the plain dense set: {sorted(unexpected)}")
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def export_generator(generator: nn.Module, latent_dim: int) -> bytes:
    example = torch.zeros(EXAMPLE_BATCH, latent_dim)
    return export_graph(GeneratorGraph(generator), example, [GENERATOR_INPUT], [GENERATOR_OUTPUT])


def export_discriminator(discriminator: nn.Module, image_dim: int) -> bytes:
    example = torch.zeros(EXAMPLE_BATCH, image_dim)
    return export_graph(discriminator, example, [DISCRIMINATOR_INPUT], list(DISCRIMINATOR_OUTPUTS))
