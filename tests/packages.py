"""Model packages for runtime tests, exported from seeded, untrained PyTorch networks."""

import torch

from export.package import write_package
from training.config import TrainConfig
from training.model import build_models

ARCHITECTURES = {
    "default": {},
    "three_layers": {"generator_hidden": (128, 256), "discriminator_hidden": (256, 128)},
    "alpha_0.2": {"leaky_relu_alpha": 0.2},
    "hidden_256": {"generator_hidden": (256,), "discriminator_hidden": (256,), "latent_dim": 64},
}


def make_package(out_dir, architecture: str = "default", seed: int = 0):
    """Write a package for `architecture`; returns (package path, generator, discriminator)."""
    config = TrainConfig()
    for key, value in ARCHITECTURES[architecture].items():
        setattr(config.model, key, value)
    torch.manual_seed(seed)
    generator, discriminator = build_models(config.model)
    state = {"config": config.to_dict(), "generator": generator.state_dict(),
             "discriminator": discriminator.state_dict(), "step": 0, "epoch": 0}
    path = write_package(state, out_dir, log=lambda *args: None)
    return path, generator.eval(), discriminator.eval()
