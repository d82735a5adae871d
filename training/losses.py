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
