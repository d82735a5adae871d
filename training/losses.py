"""GAN losses, all on logits (binary cross-entropy with the sigmoid folded in, for stability)."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.model import DenseStack, Discriminator, leaky_relu


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


# ---------------------------------------------------------------------------------------------
# R1 in closed form, for the dense Leaky-ReLU discriminator: no double backward
#
# logit = w_L . a_{L-1} + b_L, a_l = leaky(h_l), h_l = W_l a_{l-1} + b_l, a_0 = x. By the chain rule
#     g_L = w_L,   g_l = (g_{l+1} * leaky'(h_l)) @ W_l,   d logit / d x = g_1 (the row for each image),
# with leaky'(h) = 1 where h > 0, else alpha: F.leaky_relu's own derivative, alpha at exactly h = 0.
# The masks leaky'(h_l) are piecewise constant, so their derivative is zero wherever it exists (as in
# autograd's double backward): the penalty's gradient flows only through the W_l in the chain above,
# and a plain first-order .backward() gives the parameter gradients of r1_penalty (to rounding).


def discriminator_with_r1_penalty(discriminator: nn.Module, real: torch.Tensor
                                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward pass of `discriminator` (a training.model.Discriminator, not its DDP wrapper) on
    `real` (B, image_dim), returning (probability (B, 1), logits (B, 1), R1 penalty ()), where the
    logits are those of discriminator(real) bit for bit. The penalty runs the ops autograd runs for
    r1_penalty(real, logits), so its value matches bit for bit too (on the CPU); its parameter
    gradients match to float rounding (summed in another order). `real` need not require grad."""
    layers, alpha = _dense_layers(discriminator)
    x, preactivations = real, []
    for layer in layers[:-1]:
        preactivations.append(layer(x))  # h_l: (B, width_l)
        x = leaky_relu(preactivations[-1], alpha)
    logits = layers[-1](x)  # (B, 1)
    return torch.sigmoid(logits), logits, _r1_from_preactivations(layers, alpha, preactivations)


def r1_penalty_closed_form(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """r1_penalty(real, discriminator(real)[1]) without the double backward (see above)."""
    return discriminator_with_r1_penalty(discriminator, real)[2]


def _r1_from_preactivations(layers: nn.ModuleList, alpha: float,
                            preactivations: list[torch.Tensor]) -> torch.Tensor:
    gradient = layers[-1].weight  # w_L: (1, width_{L-1}), broadcast over the batch below
    for layer, h in zip(reversed(layers[:-1]), reversed(preactivations), strict=True):
        # g * leaky'(h): (B, width_l). The op F.leaky_relu's own backward runs: one kernel, the same
        # rounding as autograd's, and differentiable in g (its derivative in h is zero, as it should be).
        gradient = torch.ops.aten.leaky_relu_backward(gradient.expand_as(h), h, alpha, False)
        gradient = gradient @ layer.weight  # (B, width_l) @ (width_l, fan_in) -> (B, fan_in)
    # with no hidden layer, gradient is still w_1 (1, fan_in): the same for every image
    return gradient.pow(2).sum(dim=1).mean()


def _dense_layers(discriminator: nn.Module) -> tuple[nn.ModuleList, float]:
    """The Linear layers and alpha of a Discriminator, after checking the closed form fits it."""
    if isinstance(discriminator, DistributedDataParallel):
        raise TypeError("pass the discriminator itself (DDP's .module), not its DDP wrapper")
    if not isinstance(discriminator, Discriminator) or type(discriminator.stack) is not DenseStack:
        raise TypeError(f"the closed-form R1 penalty knows only training.model.Discriminator's dense "
                        f"Leaky-ReLU stack, not {type(discriminator).__name__}; use r1_penalty")
    layers = discriminator.stack.layers
    if not all(type(layer) is nn.Linear for layer in layers) or layers[-1].out_features != 1:
        raise TypeError("the closed-form R1 penalty needs plain Linear layers ending in one logit")
    return layers, discriminator.stack.alpha
