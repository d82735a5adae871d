"""Each training step kind built from a StepState alone, without a Trainer: tiny networks (latent 8,
hidden widths 32 and 24), batches of 8 random images, a few steps on the CPU (the graphed step
without a capture; with one where CUDA is available).

Stated tolerances: after three steps from the same state the fast step's weights agree with the
reference step's to 1e-4 of each tensor's largest magnitude (the same float32 products summed in
another order, and fused Adam rounds apart from the default one; tests/test_fast_step.py holds one
step's gradients to 1e-5). The graphed step is the fast step bit for bit; a step resumed from a
copied state is bit for bit too."""

import copy

import pytest
import torch

from training.config import ModelConfig, OptimizerConfig
from training.fast_step import FastStep
from training.graphed_step import GraphedStep
from training.model import build_models
from training.reference_step import ReferenceStep, StepNoise, StepState

BATCH = 8
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA graph needs CUDA")
KINDS = ["reference", "fast", "graphed", pytest.param("graphed, captured", marks=CUDA)]
CONFIGS = {
    "default": {},  # label smoothing 0.1, R1 1.0, shifts of 2 pixels, a moving average
    "conditional": {"conditional": True, "classes": 10},
    "plain: no R1, no shift, no average, D without a hidden layer": {
        "r1_gamma": 0.0, "augment_shift": 0, "ema_decay": 0.0, "discriminator_hidden": ()},
}


def make_state(kind: str, init_seed: int = 0, rank: int = 0, **values) -> StepState:
    """Networks, optimizers and noise as the trainer makes them (the fast steps on fused Adam): the
    weights from init_seed, the noise from the run's seed 0 and `rank`."""
    model = ModelConfig(latent_dim=8, generator_hidden=(32,), discriminator_hidden=(24,))
    losses = OptimizerConfig()
    for key, value in values.items():
        setattr(model if hasattr(model, key) else losses, key, value)
    device = torch.device("cuda" if kind.endswith("captured") else "cpu")
    torch.manual_seed(init_seed)
    generator, discriminator = (network.to(device) for network in build_models(model))

    def adam(network: torch.nn.Module, rate: float) -> torch.optim.Adam:
        return torch.optim.Adam(network.parameters(), lr=rate, betas=(losses.beta1, losses.beta2),
                                fused=kind != "reference" or None)

    return StepState(generator, discriminator, adam(generator, losses.generator_lr),
                     adam(discriminator, losses.discriminator_lr), StepNoise(0, rank, device), model,
                     label_smoothing=losses.label_smoothing, r1_gamma=losses.r1_gamma,
                     augment_shift=losses.augment_shift, ema_decay=losses.ema_decay,
                     generator_ema=copy.deepcopy(generator).requires_grad_(False) if losses.ema_decay else None)


def make_step(kind: str, state: StepState):
    if kind == "reference":
        return ReferenceStep(state)
    if kind == "fast":
        return FastStep(state)
    return GraphedStep(FastStep(state), capture=kind.endswith("captured"))


def batches(state: StepState, count: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """`count` batches of (images (B, 784) in [-1, 1], labels (B,) for a conditional model, else None)."""
    draw = torch.Generator().manual_seed(7)
    found = []
    for _ in range(count):
        images = torch.rand(BATCH, 784, generator=draw) * 2 - 1
        labels = torch.randint(0, 10, (BATCH,), generator=draw) if state.classes else None
        found.append((images.to(state.device), None if labels is None else labels.to(state.device)))
    return found


def run(step, state: StepState, real: list, first: int = 0) -> list[torch.Tensor]:
    """Steps first, first + 1, ... on `real`; each step's metrics (4,)."""
    return [step(first + index, images, labels) for index, (images, labels) in enumerate(real)]


def weights(state: StepState) -> dict[str, torch.Tensor]:
    networks = {"G": state.generator, "D": state.discriminator, "EMA": state.generator_ema}
    return {f"{name}.{key}": value.detach().clone() for name, network in networks.items() if network is not None
            for key, value in network.state_dict().items()}


def assert_close(a: torch.Tensor, b: torch.Tensor, relative: float, what: str) -> None:
    scale = max(a.abs().max().item(), 1e-30)
    worst = (a - b).abs().max().item()
    assert worst <= relative * scale, f"{what}: differs by {worst:.3g}, {worst / scale:.3g} of its largest value"


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_step_trains_its_state_and_touches_nothing_else(kind, config):
    state, bystander = make_state(kind, **CONFIGS[config]), make_state(kind, init_seed=1, **CONFIGS[config])
    before, bystander_before, rng = weights(state), weights(bystander), torch.get_rng_state()
    metrics = run(make_step(kind, state), state, batches(state, 3))
    for loss_d, loss_g, d_real, d_fake in (m.cpu().tolist() for m in metrics):
        assert loss_d > 0 and loss_g > 0 and 0 < d_real < 1 and 0 < d_fake < 1
    after = weights(state)
    assert [key for key in before if torch.equal(before[key], after[key])] == []  # every weight moved
    assert all(len(optimizer.state) == len(optimizer.param_groups[0]["params"])
               for optimizer in (state.optimizer_g, state.optimizer_d))
    # its draws came from its own noise source, and another state's networks were left alone
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(value, weights(bystander)[key]) for key, value in bystander_before.items())
    assert all(p.requires_grad for p in state.discriminator.parameters())  # D unfrozen after G's update


@pytest.mark.parametrize("config", CONFIGS)
def test_three_fast_steps_end_near_the_reference_and_the_graphed_step_on_the_fast_one(config):
    states = {kind: make_state(kind, **CONFIGS[config]) for kind in ("reference", "fast", "graphed")}
    real = batches(states["fast"], 3)
    metrics = {kind: run(make_step(kind, state), state, real) for kind, state in states.items()}
    found = {kind: weights(state) for kind, state in states.items()}
    for key, value in found["reference"].items():
        assert_close(value, found["fast"][key], 1e-4, f"{config}: fast {key}")
        assert torch.equal(found["fast"][key], found["graphed"][key]), f"{config}: graphed {key}"
    torch.testing.assert_close(metrics["fast"], metrics["reference"], rtol=1e-3, atol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(metrics["fast"], metrics["graphed"], strict=True))


@pytest.mark.parametrize("kind", ["reference", "fast", "graphed"])
def test_a_step_resumed_from_a_copy_of_the_state_continues_bit_for_bit(kind):
    """Steps 0..3 in one go, against steps 2 and 3 on a fresh state loaded with the first one's
    after step 1: the step number alone picks the draws, so a resumed run repeats them."""
    whole, resumed = make_state(kind), make_state(kind, init_seed=3)  # other weights until loaded
    real, step = batches(whole, 4), make_step(kind, whole)
    run(step, whole, real[:2])
    for part in ("generator", "discriminator", "generator_ema", "optimizer_g", "optimizer_d"):
        getattr(resumed, part).load_state_dict(copy.deepcopy(getattr(whole, part).state_dict()))
    tail = run(make_step(kind, resumed), resumed, real[2:], first=2)
    assert all(torch.equal(a, b) for a, b in zip(run(step, whole, real[2:], first=2), tail, strict=True))
    assert all(torch.equal(value, weights(resumed)[key]) for key, value in weights(whole).items())


def test_the_step_number_and_the_rank_pick_the_draws():
    steps = {rank: FastStep(make_state("fast", rank=rank)) for rank in (0, 1)}
    ((real, _),) = batches(steps[0].state, 1)
    # the draws of step t on rank r: the latents (B, latent_dim), then three windows' corners (B,)
    draws = {(rank, t): torch.cat([x.flatten().float() for x in step.inputs(t, real)[1:]])
             for rank, step in steps.items() for t in (4, 5)}
    assert torch.equal(torch.cat([x.flatten().float() for x in steps[0].inputs(4, real)[1:]]), draws[0, 4])
    assert not any(torch.equal(draws[a], draws[b]) for a in draws for b in draws if a != b)
