"""The package contract (ganpack.contract) is the one definition that training, export, the
benchmarks and every backend agree with: the pixel mapping, the latent distributions, the
activation names, the files."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import ganpack
from ganpack import contract
from ganpack.backends import activations
from ganpack.dense_stack import ACTIVATIONS as ONNX_ACTIVATIONS
from ganpack.latents import draw_numpy, scale_offset
from ganpack.model import DEFAULT_MODEL
from training.config import ModelConfig
from training.mnist import to_training_tensor
from training.model import sample_latent

ROOT = Path(__file__).resolve().parent.parent
LEVELS = np.arange(256, dtype=np.uint8)  # every pixel value


def benchmark_module(name: str):
    """benchmarks/NAME.py, which is a script folder rather than a package."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# pixels


def test_the_pixel_mapping_round_trips_every_level():
    floats = contract.from_uint8(LEVELS)
    assert floats.dtype == np.float32 and floats[0] == -1.0 and floats[255] == 1.0
    assert np.array_equal(contract.to_uint8(floats), LEVELS)
    assert np.array_equal(contract.to_uint8(np.array([-7.0, -1.0, 1.0, 7.0])), [0, 0, 255, 255])  # clipped
    assert contract.IMAGE_DIM == contract.IMAGE_SIDE ** 2 == 784


def test_training_scales_pixels_exactly_as_the_contract_does():
    """training/mnist.py keeps a torch version (in place, on the device): on the CPU it gives
    the contract's float32 bits for every level."""
    from_torch = to_training_tensor(LEVELS.reshape(1, 16, 16), "cpu").numpy()[0]
    assert np.array_equal(from_torch.view(np.uint32), contract.from_uint8(LEVELS).view(np.uint32))


def test_the_benchmark_baseline_spells_out_the_same_mapping():
    """measure.py's "plain onnxruntime" baseline writes the mapping as a user without ganpack
    would; it must still be the contract's, or its rows would not be comparable."""
    measure = benchmark_module("measure")
    floats = np.linspace(-1.2, 1.2, 100_001, dtype=np.float32)
    assert np.array_equal(measure.plain_to_uint8(floats), contract.to_uint8(floats))
    assert np.array_equal(measure.plain_from_uint8(LEVELS).view(np.uint32), contract.from_uint8(LEVELS).view(np.uint32))


# ---------------------------------------------------------------------------------------------
# latents


@pytest.mark.parametrize("distribution", sorted(contract.LATENT_DISTRIBUTIONS))
def test_training_draws_the_distribution_the_package_records(distribution):
    """sample_latent takes its parameters from the contract; the bits are those of the plain
    torch draws it made before (torch.randn; torch.rand * 2 - 1), so runs stay reproducible."""
    config = ModelConfig(latent_distribution=distribution)
    z = sample_latent(1000, config, torch.Generator().manual_seed(3), torch.device("cpu"))
    shape, generator = (1000, config.latent_dim), torch.Generator().manual_seed(3)
    expected = (torch.randn(shape, generator=generator) if distribution == contract.NORMAL
                else torch.rand(shape, generator=generator) * 2.0 - 1.0)
    assert torch.equal(z, expected)


@pytest.mark.parametrize("distribution", sorted(contract.LATENT_DISTRIBUTIONS))
def test_the_runtime_stream_draws_the_same_distribution(distribution):
    scale, offset = scale_offset(distribution, contract.LATENT_PARAMETERS[distribution])
    z = draw_numpy(7, 0, 4000, 100, distribution, scale, offset)
    assert set(contract.LATENT_PARAMETERS[distribution]) == set(contract.LATENT_DISTRIBUTIONS[distribution])
    if distribution == contract.NORMAL:
        assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    else:
        assert -1.0 <= z.min() and z.max() < 1.0 and abs(z.std() - (1 / 3) ** 0.5) < 0.01


# ---------------------------------------------------------------------------------------------
# activation names and files


def test_every_activation_name_is_known_to_the_numpy_backend_and_the_graph_reader():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    for name in contract.ACTIVATIONS:
        assert activations.apply(x, name, 0.1).shape == x.shape
    assert set(ONNX_ACTIVATIONS.values()) | {contract.IDENTITY} == set(contract.ACTIVATIONS)


def test_the_c_backend_knows_every_activation_and_distribution():
    try:
        from ganpack.backends import c_backend
    except ImportError:
        pytest.skip("the C kernel is not built")
    assert set(c_backend.ACTIVATION_CODES) == set(contract.ACTIVATIONS)
    assert set(c_backend.DISTRIBUTION_CODES) == set(contract.LATENT_DISTRIBUTIONS)


def test_the_built_in_model_is_what_the_contract_describes():
    assert sorted(path.name for path in DEFAULT_MODEL.iterdir()) == sorted(contract.PACKAGE_FILES)
    manifest = ganpack.load(backend="numpy").manifest
    assert manifest.image.shape == list(contract.IMAGE_SHAPE)
    assert manifest.image.value_range == contract.IMAGE_VALUE_RANGE
    assert manifest.image.to_uint8 == contract.TO_UINT8
    assert manifest.latent.parameters == contract.LATENT_PARAMETERS[manifest.latent.distribution]
    for field, file in contract.NETWORK_FILES.items():
        network = getattr(manifest, field)
        assert network.file == file
        assert {network.hidden_activation, network.output_activation} <= set(contract.ACTIVATIONS)
