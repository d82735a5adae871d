"""Differentiable augmentation for the discriminator's inputs (DiffAugment, Zhao et al. 2020).

With only 5,000 bundled digits the discriminator memorizes the training set and its gradients stop
telling the generator anything useful. Shifting every image the discriminator sees, real and
generated alike, by a few random pixels makes memorizing harder. Because the same random shift is
applied to both and gradients flow through it, the generator still learns unshifted digits.
"""

import torch
import torch.nn.functional as F

SIDE = 28  # MNIST images are 28 x 28, flattened to 784
BACKGROUND = -1.0  # black in the [-1, 1] pixel scale


def translate(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of (B, 784) by its own random (dy, dx) in [-max_shift, max_shift],
    filling the uncovered border with background; returns (B, 784). max_shift 0 is the identity."""
    if max_shift == 0:
        return images
    batch = images.shape[0]
    padded = F.pad(images.view(batch, SIDE, SIDE), (max_shift,) * 4, value=BACKGROUND)  # (B, 28+2s, 28+2s)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch, 1), generator=generator,
                            device=images.device)  # top-left corner of each crop
    span = torch.arange(SIDE, device=images.device)
    rows = (offsets[0] + span)[:, :, None]  # (B, 28, 1)
    cols = (offsets[1] + span)[:, None, :]  # (B, 1, 28)
    index = torch.arange(batch, device=images.device)[:, None, None]
    return padded[index, rows, cols].reshape(batch, SIDE * SIDE)
