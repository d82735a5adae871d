"""The GAN from the design: two fully connected Leaky-ReLU stacks.

Generator:     z (B, latent_dim) -> Linear(128) -> LeakyReLU -> Linear(784) -> tanh
Discriminator: x (B, 784)        -> Linear(128) -> LeakyReLU -> Linear(1)   -> sigmoid
Hidden widths, alpha and latent size come from ModelConfig; both networks return
(activated output, logits) so the losses can work on logits for numerical stability.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganpack.contract import LATENT_PARAMETERS, NORMAL
from ganpack.latents import scale_offset
from training.config import ModelConfig


def leaky_relu(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """f(x) = max(alpha * x, x), which for 0 <= alpha < 1 is F.leaky_relu (ONNX LeakyRelu)."""
    return F.leaky_relu(x, negative_slope=alpha)


class DenseStack(nn.Module):
    """Linear layers with Leaky ReLU between them; the last layer's output is left raw (logits)."""

    def __init__(self, widths: list[int], alpha: float):
        super().__init__()
        self.alpha = alpha
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = leaky_relu(layer(x), self.alpha)
        return self.layers[-1](x)


class Generator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        widths = [config.latent_dim, *config.generator_hidden, config.image_dim]
        self.stack = DenseStack(widths, config.leaky_relu_alpha)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.stack(z)  # (B, 784)
        return torch.tanh(logits), logits  # image in [-1, 1], (B, 784) each


class Discriminator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        widths = [config.image_dim, *config.discriminator_hidden, 1]
        self.stack = DenseStack(widths, config.leaky_relu_alpha)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.stack(image)  # (B, 1)
        return torch.sigmoid(logits), logits


def initialize(module: nn.Module, scheme: str) -> None:
    """Re-initialize every Linear layer; "torch" keeps PyTorch's own default."""
    for layer in module.modules():
        if not isinstance(layer, nn.Linear) or scheme == "torch":
            continue
        if scheme == "glorot_uniform":  # TensorFlow 1's default for dense layers
            nn.init.xavier_uniform_(layer.weight)
        elif scheme == "normal_0.02":  # the DCGAN paper's choice
            nn.init.normal_(layer.weight, 0.0, 0.02)
        else:
            raise ValueError(f"unknown init scheme {scheme!r}")
        nn.init.zeros_(layer.bias)


def build_models(config: ModelConfig) -> tuple[Generator, Discriminator]:
    generator, discriminator = Generator(config), Discriminator(config)
    initialize(generator, config.init)
    initialize(discriminator, config.init)
    return generator, discriminator


def sample_latent(batch: int, config: ModelConfig, generator: torch.Generator,
                  device: torch.device) -> torch.Tensor:
    """z of shape (batch, latent_dim), drawn on `device` by torch from the configured distribution
    with the parameters the package records (ganpack.contract.LATENT_PARAMETERS): N(0, 1) or
    U(-1, 1). A standard draw, then * scale + offset as ganpack.latents does (both exact here)."""
    shape = (batch, config.latent_dim)
    distribution = config.latent_distribution
    scale, offset = (float(v) for v in scale_offset(distribution, LATENT_PARAMETERS[distribution]))
    if distribution == NORMAL:
        z = torch.randn(shape, generator=generator, device=device)
    else:
        z = torch.rand(shape, generator=generator, device=device)
    return z.mul_(scale).add_(offset)


def parameter_count(module: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())
