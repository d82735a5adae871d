"""The networks from the design: shapes, activations, the Leaky ReLU formula, init and latents."""

import pytest
import torch

from training.config import ModelConfig
from training.model import Discriminator, Generator, build_models, leaky_relu, parameter_count, sample_latent


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.2, 0.5])
def test_leaky_relu_is_max_of_alpha_x_and_x(alpha):
    x = torch.linspace(-5, 5, 1001)
    assert torch.equal(leaky_relu(x, alpha), torch.maximum(alpha * x, x))


def test_default_shapes_and_ranges():
    torch.manual_seed(0)
    generator, discriminator = build_models(ModelConfig())
    z = torch.randn(7, 100)
    image, logits = generator(z)
    assert image.shape == logits.shape == (7, 784)
    assert torch.allclose(image, torch.tanh(logits))
    assert image.abs().max() <= 1.0
    probability, d_logits = discriminator(image)
    assert probability.shape == d_logits.shape == (7, 1)
    assert torch.allclose(probability, torch.sigmoid(d_logits))


def test_default_architecture_matches_the_design():
    generator, discriminator = build_models(ModelConfig())
    g_shapes = [tuple(layer.weight.shape) for layer in generator.stack.layers]
    d_shapes = [tuple(layer.weight.shape) for layer in discriminator.stack.layers]
    assert g_shapes == [(128, 100), (784, 128)]
    assert d_shapes == [(128, 784), (1, 128)]
    assert parameter_count(generator) == 100 * 128 + 128 + 128 * 784 + 784
    assert generator.stack.alpha == discriminator.stack.alpha == 0.01


def test_generator_applies_leaky_relu_between_layers():
    config = ModelConfig(leaky_relu_alpha=0.2)
    generator = Generator(config)
    z = torch.randn(3, 100)
    first, second = generator.stack.layers
    h = first(z)
    expected = torch.tanh(second(torch.maximum(0.2 * h, h)))
    assert torch.allclose(generator(z)[0], expected, atol=1e-6)


def test_non_default_architecture():
    config = ModelConfig(latent_dim=64, generator_hidden=(256, 256), discriminator_hidden=(256,),
                         leaky_relu_alpha=0.2)
    generator, discriminator = Generator(config), Discriminator(config)
    assert len(generator.stack.layers) == 3
    image, _ = generator(torch.randn(5, 64))
    assert image.shape == (5, 784)
    assert discriminator(image)[0].shape == (5, 1)


@pytest.mark.parametrize("scheme", ["glorot_uniform", "normal_0.02"])
def test_init_schemes_zero_the_biases(scheme):
    torch.manual_seed(0)
    generator, _ = build_models(ModelConfig(init=scheme))
    for layer in generator.stack.layers:
        assert torch.count_nonzero(layer.bias) == 0
    weight = generator.stack.layers[0].weight
    if scheme == "normal_0.02":
        assert abs(weight.std().item() - 0.02) < 0.002
    else:  # Glorot: U(-b, b) with b = sqrt(6 / (fan_in + fan_out))
        assert weight.abs().max() <= (6 / (100 + 128)) ** 0.5


def test_latent_distributions():
    generator = torch.Generator().manual_seed(0)
    normal = sample_latent(20000, ModelConfig(latent_distribution="normal"), generator, torch.device("cpu"))
    uniform = sample_latent(20000, ModelConfig(latent_distribution="uniform"), generator, torch.device("cpu"))
    assert normal.shape == (20000, 100)
    assert abs(normal.mean().item()) < 0.01 and abs(normal.std().item() - 1) < 0.01
    assert uniform.min() >= -1 and uniform.max() <= 1
    assert abs(uniform.std().item() - (1 / 3) ** 0.5) < 0.01
