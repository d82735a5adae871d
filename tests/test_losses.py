"""The loss definitions, checked against the binary cross-entropy formula written out by hand."""

import pytest
import torch

from training.losses import discriminator_loss, generator_loss, r1_penalty


def bce(logits, target):
    """-[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))], averaged, in float64."""
    p = torch.sigmoid(logits.double())
    return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()


def test_discriminator_loss_smooths_only_the_real_targets():
    torch.manual_seed(0)
    real, fake = torch.randn(32, 1), torch.randn(32, 1)
    expected = bce(real, 0.9) + bce(fake, 0.0)
    assert torch.allclose(discriminator_loss(real, fake, 0.1).double(), expected, atol=1e-6)


def test_label_smoothing_changes_the_loss():
    real, fake = torch.full((4, 1), 3.0), torch.zeros(4, 1)
    smoothed, plain = discriminator_loss(real, fake, 0.1), discriminator_loss(real, fake, 0.0)
    assert smoothed > plain  # a confident real score is penalised once targets are 0.9


def test_smoothed_optimum_is_at_the_smoothed_target():
    # d/dl BCE(l, 0.9) vanishes where sigmoid(l) = 0.9: the discriminator is pushed to 0.9, not 1
    logit = torch.logit(torch.tensor([[0.9]])).requires_grad_()
    discriminator_loss(logit, torch.full((1, 1), -30.0), 0.1).backward()
    assert abs(logit.grad.item()) < 1e-6


def test_generator_loss_is_non_saturating():
    torch.manual_seed(1)
    fake = torch.randn(16, 1)
    assert torch.allclose(generator_loss(fake).double(), bce(fake, 1.0), atol=1e-6)
    # where D confidently rejects the fakes, the gradient stays large (that is the point)
    logit = torch.full((1, 1), -10.0, requires_grad=True)
    generator_loss(logit).backward()
    assert abs(logit.grad.item()) > 0.99


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_weight_norm():
    weight = torch.tensor([[3.0, -4.0]])  # logit = 3 x0 - 4 x1 + 1: gradient (3, -4) everywhere
    real = torch.randn(5, 2, requires_grad=True)
    logits = real @ weight.T + 1.0
    assert r1_penalty(real, logits).item() == pytest.approx(25.0)


def test_r1_penalty_is_differentiable_in_the_discriminator_weights():
    weight = torch.tensor([[3.0, -4.0]], requires_grad=True)
    real = torch.randn(5, 2, requires_grad=True)
    r1_penalty(real, real @ weight.T).backward()
    assert torch.allclose(weight.grad, 2 * weight.detach())  # d|w|^2 / dw = 2w
