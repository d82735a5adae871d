"""The state a training step works on, and the reference step: the GAN update through autograd.

A step is one D update then one G update on the same latents, called as step(t, real, labels) with
the step's number t, a real batch (B, 784) and, for a conditional model, its labels (B,); it
returns detached [loss_d, loss_g, mean D(x), mean D(G(z))] (4,) on the device, with no host sync.
Every step kind (this one, training/fast_step.py, training/graphed_step.py) is built from a
StepState alone, so a step can be read, built and tested without a Trainer (tests/test_steps.py).

Randomness is stateless: every draw of step t on rank r (the latents, a conditional model's fake
labels, the shifts) comes from one generator seeded with (seed, r, t), so a run stopped anywhere
and resumed draws the same numbers. This step is the reference every faster step is tested against.
"""

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.augment import translate
from training.config import ModelConfig
from training.distributed import World
from training.losses import discriminator_loss, generator_loss, r1_penalty
from training.model import sample_labels, sample_latent


def mix_seed(*parts: int) -> int:
    """Combine integers into one 63-bit seed (distinct inputs give distinct streams in practice)."""
    value = 0x2545F4914F6CDD1D
    for part in parts:
        value = (value * 6364136223846793005 + part + 1442695040888963407) % (1 << 63)
    return value


class StepNoise:
    """The per-step noise source: one torch.Generator on `device`, reseeded for each step."""

    def __init__(self, seed: int, rank: int, device: torch.device):
        self.seed, self.rank, self.device = seed, rank, device
        self.generator = torch.Generator(device=device)

    def at(self, step: int) -> torch.Generator:
        """The generator every random draw of step `step` comes from, seeded by (seed, rank, step)."""
        self.generator.manual_seed(mix_seed(self.seed, self.rank, step, 1))
        return self.generator


@dataclass
class StepState:
    """Everything a step reads or updates. The step changes the two networks' weights, their
    optimizers' moments and the moving average, and reseeds `noise`; nothing else. The learning
    rates are the optimizers' own (the trainer's schedule sets them each epoch)."""

    generator: nn.Module  # G: z (B, latent_dim) [, labels] -> (image (B, 784) in [-1, 1], logits)
    discriminator: nn.Module  # D: image (B, 784) [, labels] -> (D(x) (B, 1), logit (B, 1))
    optimizer_g: torch.optim.Adam
    optimizer_d: torch.optim.Adam
    noise: StepNoise
    model: ModelConfig  # the latents' size and distribution, leaky_relu_alpha, a conditional model's classes
    label_smoothing: float = 0.0  # one-sided: D's targets for real images are 1 - label_smoothing
    r1_gamma: float = 0.0  # weight of the R1 penalty on real images; 0: none
    augment_shift: int = 0  # D sees every image shifted by up to this many pixels; 0: unshifted
    ema_decay: float = 0.0  # of the moving average of G's weights, after its warm-up
    generator_ema: nn.Module | None = None  # that moving average, when ema_decay > 0
    world: World = field(default_factory=World)  # under torchrun, the gradients are averaged over its ranks
    # G and D as the D update calls them: in DistributedDataParallel under torchrun, else themselves
    generator_train: nn.Module = field(init=False)
    discriminator_train: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        wrap = DistributedDataParallel if self.world.distributed else (lambda module: module)
        self.generator_train, self.discriminator_train = wrap(self.generator), wrap(self.discriminator)

    @property
    def device(self) -> torch.device:
        return self.noise.device

    @property
    def classes(self) -> int:
        """0 for an unconditional model; else how many classes the one-hot labels have."""
        return self.model.classes if self.model.conditional else 0

    def ema_decay_at(self, step: int) -> float:
        # Warm-up: early on the average would mostly remember the random initial weights.
        return min(self.ema_decay, (1 + step) / (10 + step))


class Step(Protocol):
    """What the trainer calls each step (see the module docstring)."""

    def __call__(self, step: int, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor: ...


class ReferenceStep:
    """The GAN update through autograd, the losses of training/losses.py as written."""

    def __init__(self, state: StepState):
        self.state = state

    def __call__(self, step: int, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        state, batch = self.state, real.shape[0]
        noise = state.noise.at(step)
        z = sample_latent(batch, state.model, noise, state.device)  # (B, latent_dim)
        # conditional: G is asked for uniformly drawn classes, and D judges each image with its label
        fake_labels = sample_labels(batch, state.classes, noise, state.device) if state.classes else None
        fake, _ = state.generator_train(z, fake_labels)  # (B, 784)

        # Update D: maximize log D(x) + log(1 - D(G(z))), real targets smoothed to 1 - label_smoothing.
        # One discriminator (shared weights) scores both batches, each image randomly shifted
        # when augment_shift > 0 (the noise generator draws the shifts, so resume stays exact).
        real = translate(real, state.augment_shift, noise)
        if state.r1_gamma:
            real = real.detach().requires_grad_(True)
        real_prob, real_logits = state.discriminator_train(real, labels)
        shifted_fake = translate(fake.detach(), state.augment_shift, noise)
        fake_prob, fake_logits = state.discriminator_train(shifted_fake, fake_labels)
        loss_d = discriminator_loss(real_logits, fake_logits, state.label_smoothing)
        if state.r1_gamma:
            loss_d = loss_d + 0.5 * state.r1_gamma * r1_penalty(real, real_logits)
        state.optimizer_d.zero_grad(set_to_none=True)
        loss_d.backward()
        state.optimizer_d.step()

        # Update G: maximize log D(G(z)) (non-saturating). D is frozen and called without its DDP
        # wrapper: its weight gradients would be thrown away, so neither compute nor sync them.
        state.discriminator.requires_grad_(False)
        _, fake_logits_g = state.discriminator(translate(fake, state.augment_shift, noise), fake_labels)
        loss_g = generator_loss(fake_logits_g)
        state.optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        state.optimizer_g.step()
        state.discriminator.requires_grad_(True)

        # Update the moving average: ema <- decay ema + (1 - decay) G
        if state.generator_ema is not None:
            decay = state.ema_decay_at(step)
            pairs = zip(state.generator_ema.parameters(), state.generator.parameters(), strict=True)
            with torch.no_grad():
                for average, current in pairs:
                    average.lerp_(current, 1.0 - decay)
        return torch.stack([loss_d, loss_g, real_prob.mean(), fake_prob.mean()]).detach()
