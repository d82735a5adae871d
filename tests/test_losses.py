"""The loss definitions, checked against the binary cross-entropy formula written out by hand."""

import pytest
import torch
from torch import nn

from training.config import ModelConfig
from training.losses import (
    discriminator_loss,
    discriminator_with_r1_penalty,
    generator_loss,
    r1_penalty,
    r1_penalty_closed_form,
)
from training.model import Discriminator


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


# ---------------------------------------------------------------------------------------------
# R1 in closed form against autograd's double backward
#
# Tolerances: float32 relative 1e-5 (the gradients are summed in different orders; the observed gap
# is about 1e-7, and the value itself is bit-identical), float64 relative 1e-12. Gradients are
# compared as whole tensors, |a - b| <= rel |b| in the Euclidean norm, since single entries near
# zero have no useful relative error.

def random_discriminator(hidden, alpha, seed, image_dim=784, dtype=torch.float32):
    torch.manual_seed(seed)
    config = ModelConfig(discriminator_hidden=hidden, leaky_relu_alpha=alpha, image_dim=image_dim)
    return Discriminator(config).to(dtype)


def penalty_and_gradients(discriminator, penalty):
    discriminator.zero_grad(set_to_none=True)
    penalty.backward()
    return penalty.detach(), [p.grad for p in discriminator.parameters()]


def assert_close(actual, expected, rel):
    assert torch.linalg.vector_norm(actual - expected) <= rel * torch.linalg.vector_norm(expected)


def compare_with_double_backward(discriminator, real, rel):
    real = real.detach().requires_grad_(True)
    expected, expected_grads = penalty_and_gradients(discriminator, r1_penalty(real, discriminator(real)[1]))
    actual, actual_grads = penalty_and_gradients(discriminator, r1_penalty_closed_form(discriminator, real.detach()))
    assert_close(actual, expected, rel)
    for (name, _), got, want in zip(discriminator.named_parameters(), actual_grads, expected_grads, strict=True):
        if got is None:  # biases enter only through the masks leaky'(h): no gradient (None or zeros)
            assert name.endswith("bias") and (want is None or not want.any()), name
        else:
            assert_close(got, want, rel)


@pytest.mark.parametrize("hidden", [(128,), (64, 32), (48, 40, 24), ()])
@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.2])
def test_closed_form_r1_matches_double_backward_in_float32(hidden, alpha):
    discriminator = random_discriminator(hidden, alpha, seed=len(hidden) * 10 + int(alpha * 100))
    real = torch.rand(64, 784) * 2 - 1  # images in [-1, 1], as the trainer feeds them
    compare_with_double_backward(discriminator, real, rel=1e-5)


@pytest.mark.parametrize("hidden", [(128,), (64, 32, 16)])
def test_closed_form_r1_matches_double_backward_in_float64(hidden):
    discriminator = random_discriminator(hidden, 0.2, seed=7, dtype=torch.float64)
    real = torch.rand(32, 784, dtype=torch.float64) * 2 - 1
    compare_with_double_backward(discriminator, real, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.2])
def test_closed_form_r1_takes_alpha_as_the_slope_at_exactly_zero(alpha):
    """F.leaky_relu's derivative at h = 0 is alpha, not 1; the closed form must agree."""
    discriminator = random_discriminator((1,), alpha, seed=0, image_dim=2)
    with torch.no_grad():  # h = x0 + 0 x1 + 0 = 0 exactly for x = (0, 5); logit = 3 leaky(h)
        first, last = discriminator.stack.layers
        first.weight.copy_(torch.tensor([[1.0, 0.0]]))
        first.bias.zero_()
        last.weight.fill_(3.0)
    real = torch.tensor([[0.0, 5.0]])
    assert r1_penalty_closed_form(discriminator, real).item() == pytest.approx(9 * alpha**2, rel=1e-6, abs=1e-12)
    compare_with_double_backward(discriminator, real, rel=1e-6)


@pytest.mark.parametrize("hidden", [(128,), (64, 32)])
def test_closed_form_forward_gives_the_discriminator_s_own_outputs_bit_for_bit(hidden):
    """Same layers and the same backward kernels as autograd's: logits and penalty are identical."""
    discriminator = random_discriminator(hidden, 0.01, seed=3)
    real = torch.rand(16, 784) * 2 - 1
    probability, logits, penalty = discriminator_with_r1_penalty(discriminator, real)
    expected_probability, expected_logits = discriminator(real)
    assert torch.equal(logits, expected_logits) and torch.equal(probability, expected_probability)
    real.requires_grad_(True)
    assert torch.equal(penalty, r1_penalty(real, discriminator(real)[1]))


def test_closed_form_r1_refuses_a_network_it_does_not_know():
    with pytest.raises(TypeError, match="use r1_penalty"):
        r1_penalty_closed_form(nn.Sequential(nn.Linear(4, 1)), torch.zeros(2, 4))
