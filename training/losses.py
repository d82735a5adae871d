"""GAN losses, all on logits (binary cross-entropy with the sigmoid folded in, for stability)."""

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       label_smoothing: float) -> torch.Tensor:
    """BCE(D(x), 1 - label_smoothing) + BCE(D(G(z)), 0): one-sided smoothing, reals only."""
    real_targets = torch.full_like(real_logits, 1.0 - label_smoothing)
    fake_targets = torch.zeros_like(fake_logits)
    return (F.binary_cross_entropy_with_logits(real_logits, real_targets)
            + F.binary_cross_entropy_with_logits(fake_logits, fake_targets))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating: BCE(D(G(z)), 1), i.e. maximize log D(G(z)) rather than minimize log(1 - D(G(z)))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of |d logit / d x|^2 on real images (Mescheder et al. 2018). It keeps the
    discriminator flat around the data, so it cannot sharpen into a wall the generator cannot climb.
    `real` must require grad and `real_logits` must come from it; the result is differentiable."""
    (gradient,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)  # (B, 784)
    return gradient.pow(2).sum(dim=1).mean()
