"""The discriminator's input augmentation: random shifts with a background border, differentiable."""

import numpy as np
import pytest
import torch

from training.augment import BACKGROUND, SIDE, translate


def digits(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.rand((batch, SIDE * SIDE), generator=torch.Generator().manual_seed(seed)) * 2 - 1


def shifted_by_hand(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The 28 x 28 image moved dy rows down and dx columns right, the border filled with background."""
    out = np.full((SIDE, SIDE), BACKGROUND, dtype=image.dtype)
    src = image.reshape(SIDE, SIDE)
    rows, cols = slice(max(dy, 0), SIDE + min(dy, 0)), slice(max(dx, 0), SIDE + min(dx, 0))
    out[rows, cols] = src[max(-dy, 0):SIDE - max(dy, 0), max(-dx, 0):SIDE - max(dx, 0)]
    return out


def test_zero_shift_is_the_identity_and_draws_no_randomness():
    images, generator = digits(4), torch.Generator().manual_seed(1)
    state = generator.get_state()
    assert translate(images, 0, generator) is images
    assert torch.equal(generator.get_state(), state)  # a run without augmentation keeps its noise stream


@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_each_image_is_its_own_shift_of_the_input(max_shift):
    images = digits(256)
    out = translate(images, max_shift, torch.Generator().manual_seed(2))
    assert out.shape == images.shape
    seen = set()
    for before, after in zip(images.numpy(), out.numpy()):
        matches = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
                   if np.array_equal(after.reshape(SIDE, SIDE), shifted_by_hand(before, dy, dx))]
        assert len(matches) == 1  # random pixels: exactly one shift explains the output
        seen.add(matches[0])
    assert len(seen) == (2 * max_shift + 1) ** 2  # every shift in range is drawn


def test_same_generator_seed_gives_the_same_shifts():
    images = digits(32)
    first = translate(images, 2, torch.Generator().manual_seed(3))
    again = translate(images, 2, torch.Generator().manual_seed(3))
    other = translate(images, 2, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_gradients_reach_the_pixels_that_stay_in_frame():
    images = digits(8).requires_grad_(True)
    translate(images, 2, torch.Generator().manual_seed(5)).sum().backward()
    gradient = images.grad.reshape(8, SIDE, SIDE)
    assert set(gradient.unique().tolist()) <= {0.0, 1.0}  # each pixel lands at most once
    assert (gradient.sum(dim=(1, 2)) >= (SIDE - 4) ** 2).all()  # at most 2 rows and 2 columns fall off
