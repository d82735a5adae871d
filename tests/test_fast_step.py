"""The hand-written step (training/fast_step.py) against autograd's reference step
(training/reference_step.py), each run by a Trainer, on fixed seeds; tests/test_steps.py builds
the steps without one.

Stated tolerances: the gradients of one step agree to 1e-5 of each tensor's largest magnitude (the
same float32 products, summed in another order), the returned metrics to 1e-6, and the weights
after 20 steps to 1e-4 of each tensor's largest magnitude (Adam's fused kernel rounds differently
from the default one; GAN training does not amplify it over 20 steps)."""

import pytest
import torch

from training.config import TrainConfig, validate
from training.distributed import World
from training.fast_step import FastStep
from training.reference_step import ReferenceStep
from training.trainer import Trainer

CONFIGS = {
    "default": {},
    "no R1": {"r1_gamma": 0.0},
    "no shift": {"augment_shift": 0},
    "no EMA, uniform z": {"ema_decay": 0.0, "latent_distribution": "uniform"},
    "deeper": {"generator_hidden": (48, 32), "discriminator_hidden": (40, 24), "r1_gamma": 5.0},
    "D without a hidden layer": {"discriminator_hidden": ()},
    "conditional": {"conditional": True},
    "conditional, no shift, D without a hidden layer": {"conditional": True, "augment_shift": 0,
                                                        "discriminator_hidden": ()},
}


def trainer(train_step: str, batch_size: int = 64, **values) -> Trainer:
    config = TrainConfig()
    config.run.device, config.run.threads, config.run.train_step = "cpu", 1, train_step
    config.run.eval_every, config.run.progress = 0, False
    config.data.batch_size = batch_size
    for key, value in values.items():
        section = next(s for s in (config.model, config.optimizer, config.data, config.run) if hasattr(s, key))
        setattr(section, key, value)
    return Trainer(validate(config), None, World())


def batches(trainer: Trainer, count: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(images (B, 784), their labels (B,) for a conditional model, else None), count times."""
    order = torch.randperm(len(trainer.data), generator=torch.Generator().manual_seed(7))
    size = trainer.config.data.batch_size
    rows = [order[i * size:(i + 1) * size] for i in range(count)]
    return [(trainer.data[r], None if trainer.labels is None else trainer.labels[r]) for r in rows]


def steps(trainer: Trainer, real: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
    for batch, labels in real:
        out = trainer.train_step(batch, labels)
        trainer.step += 1
    return out


def assert_close(a: torch.Tensor, b: torch.Tensor, relative: float, what: str) -> None:
    scale = max(a.abs().max().item(), 1e-30)
    worst = (a - b).abs().max().item()
    assert worst <= relative * scale, f"{what}: differs by {worst:.3g}, {worst / scale:.3g} of its largest value"


@pytest.mark.parametrize("name", CONFIGS)
def test_one_step_has_the_reference_gradients_and_metrics(name):
    reference, fast = trainer("reference", **CONFIGS[name]), trainer("fast", **CONFIGS[name])
    for optimizer in (reference.optimizer_g, reference.optimizer_d, fast.optimizer_g, fast.optimizer_d):
        optimizer.param_groups[0]["lr"] = 0.0  # the weights stay put: each update's gradients stay in .grad
    ((real, labels),) = batches(reference, 1)
    expected, got = reference.train_step(real, labels), fast.train_step(real, labels)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    for network in ("generator", "discriminator"):
        pairs = zip(getattr(reference, network).named_parameters(), getattr(fast, network).parameters(), strict=True)
        for (key, a), b in pairs:
            assert a.grad is not None and b.grad is not None
            assert_close(a.grad, b.grad, 1e-5, f"{name}: {network}.{key}.grad")


@pytest.mark.parametrize("name", ["default", "deeper", "conditional"])
def test_twenty_steps_end_near_the_reference_weights(name):
    reference, fast = trainer("reference", **CONFIGS[name]), trainer("fast", **CONFIGS[name])
    real = batches(reference, 20)
    torch.testing.assert_close(steps(fast, real), steps(reference, real), rtol=1e-3, atol=1e-4)
    for network in ("generator", "discriminator", "generator_ema"):
        a, b = getattr(reference, network).state_dict(), getattr(fast, network).state_dict()
        for key in a:
            assert_close(a[key], b[key], 1e-4, f"{name}: {network}.{key}")
            assert not torch.equal(a[key], getattr(trainer("fast", **CONFIGS[name]), network).state_dict()[key])


def test_the_fast_step_is_repeatable_bit_for_bit():
    first, second = trainer("fast"), trainer("fast")
    real = batches(first, 6)
    assert torch.equal(steps(first, real), steps(second, real))
    for network in ("generator", "discriminator", "generator_ema"):
        for key, value in getattr(first, network).state_dict().items():
            assert torch.equal(value, getattr(second, network).state_dict()[key]), f"{network}.{key}"


def test_the_config_picks_the_step_and_adam():
    fast, reference = trainer("fast"), trainer("reference")
    assert isinstance(fast._step, FastStep) and fast.optimizer_d.param_groups[0]["fused"]
    assert isinstance(reference._step, ReferenceStep) and not reference.optimizer_d.param_groups[0]["fused"]


def test_a_checkpoint_resumes_under_the_other_step_with_its_own_adam():
    fast = trainer("fast")
    steps(fast, batches(fast, 2))
    state = fast.state()
    assert state["optimizer_d"]["param_groups"][0]["fused"]  # the checkpoint records the fused kernel
    resumed = Trainer(trainer("reference").config, None, World(), resume_state=state)
    for optimizer in (resumed.optimizer_g, resumed.optimizer_d):
        assert all(not group["fused"] for group in optimizer.param_groups)
    assert resumed.step == 2 and torch.isfinite(steps(resumed, batches(resumed, 1))).all()


def test_the_graph_ready_step_runs_the_fast_step_bit_for_bit():
    """GraphedStep without a capture (the CPU): static inputs, learning rates and the moving average's
    weight in tensors, as a CUDA graph replays them; through a learning-rate change too."""
    from training.graphed_step import GraphedStep

    plain, graphed = trainer("fast"), trainer("fast")
    graphed._step = GraphedStep(graphed._step, capture=False)
    real = batches(plain, 6)
    for index, batch in enumerate(real):
        if index == 3:  # as the decay after lr_decay_start does at an epoch's start
            for t in (plain, graphed):
                t.optimizer_g.param_groups[0]["lr"] *= 0.5
                t.optimizer_d.param_groups[0]["lr"] *= 0.25
        assert torch.equal(steps(plain, [batch]), steps(graphed, [batch]))
    assert graphed._step.values["lr_g"] == plain.optimizer_g.param_groups[0]["lr"]
    for network in ("generator", "discriminator", "generator_ema"):
        for key, value in getattr(plain, network).state_dict().items():
            assert torch.equal(value, getattr(graphed, network).state_dict()[key]), f"{network}.{key}"
    for key in ("optimizer_g", "optimizer_d"):
        for slot, state in plain.state()[key]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, graphed.state()[key]["state"][slot][name]), f"{key} {slot} {name}"
