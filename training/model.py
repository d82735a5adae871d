"""The GAN from the design: two fully connected Leaky-ReLU stacks.

Generator:     z (B, latent_dim) -> Linear(128) -> LeakyReLU -> Linear(784) -> tanh
Discriminator: x (B, 784)        -> Linear(128) -> LeakyReLU -> Linear(1)   -> sigmoid
Hidden widths, alpha and latent size come from ModelConfig; both networks return
(activated output, logits) so the losses can work on logits for numerical stability.

Conditional (ModelConfig.conditional): the class label, one-hot (B, classes), is concatenated to
G's z and to D's image, so the first layer of each reads latent_dim + classes or 784 + classes
inputs; everything else is the design's MLP.
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


def label_columns(config: ModelConfig) -> int:
    """How many one-hot label inputs each network reads beside z or the image: 0 unless conditional."""
    if not config.conditional:
        return 0
    if config.classes < 1:
        raise ValueError("a conditional model needs its class count (the trainer sets it from the data)")
    return config.classes


def with_labels(x: torch.Tensor, labels: torch.Tensor | None, classes: int) -> torch.Tensor:
    """[x ; one-hot(labels)] (B, width + classes) for a conditional network; x itself otherwise.
    labels: (B,) int64 class indices, or (B, classes) float one-hot rows (what the ONNX graphs take)."""
    if not classes:
        if labels is not None:
            raise ValueError("this network is unconditional: it takes no labels")
        return x
    if labels is None:
        raise ValueError(f"this network is conditional: it needs labels of {classes} classes")
    if labels.dim() == 1:
        labels = F.one_hot(labels, classes).to(x.dtype)
    return torch.cat([x, labels], dim=1)


class Generator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.classes = label_columns(config)
        widths = [config.latent_dim + self.classes, *config.generator_hidden, config.image_dim]
        self.stack = DenseStack(widths, config.leaky_relu_alpha)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.stack(with_labels(z, labels, self.classes))  # (B, 784)
        return torch.tanh(logits), logits  # image in [-1, 1], (B, 784) each


class Discriminator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.classes = label_columns(config)
        widths = [config.image_dim + self.classes, *config.discriminator_hidden, 1]
        self.stack = DenseStack(widths, config.leaky_relu_alpha)

    def forward(self, image: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.stack(with_labels(image, labels, self.classes))  # (B, 1)
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


def sample_labels(batch: int, classes: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(batch,) int64 class indices, uniform over the classes: the labels G is asked to draw."""
    return torch.randint(0, classes, (batch,), generator=generator, device=device)


def grid_labels(count: int, classes: int, columns: int = 10) -> torch.Tensor:
    """The labels behind a sample grid of `count` images in rows of `columns`: row r shows class
    r mod classes (with 10 classes and a 10 x 10 grid, one row per class)."""
    return (torch.arange(count) // columns) % classes


def balanced_labels(count: int, classes: int) -> torch.Tensor:
    """0, 1, ..., classes - 1, 0, 1, ...: every class equally often (to one), for evaluations."""
    return torch.arange(count) % classes

