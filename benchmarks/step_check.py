"""The training steps held to each other: in lock-step, as independent runs, broken on purpose, resumed.

benchmarks/gpu_check.py runs these; each returns a plain dict for its report.

Lock-step (lockstep): a candidate step trains on its own; before each of its steps a comparator
(an eager step, the autograd reference by default) is given the candidate's whole state (weights,
moving average, Adam's moments and step counts, the learning rates, the step number, so the same
draws) and takes the same step. The error of step t is |candidate - comparator| / |comparator's
update| per network, the update of that one step (|w_t+1 - w_t|): float rounding gives about 1e-6
to 1e-4 of an update, each step on its own, however many steps have run. A graph that replays a
stale batch, a learning rate or a moving-average weight frozen at capture is off by the whole
difference: 1/11 of the update at the first decayed rate of gpu_check's schedule (11/12 of the
rate), about the whole update for a stale batch. Independent runs cannot be held that tightly: a
GAN amplifies rounding, and the reference and the fast step (both right) end 304 steps apart by
1% to 5% of how far the weights moved, where a rate frozen at capture ends 40% apart (on the
CPU). So independent runs are held to bit identity where the code claims it (the graph against
its own uncaptured step; a resumed run against one never stopped) and otherwise only reported.
"""

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from training.config import TrainConfig, validate
from training.distributed import World
from training.fast_step import FastStep
from training.graphed_step import WARMUP, GraphedStep
from training.trainer import Trainer

NETWORKS = ("generator", "discriminator", "generator_ema")
STEP_TOLERANCE = 1e-2  # of one step's update, per network: 10x under a broken graph's smallest error
METRIC_TOLERANCE = 1e-4  # absolute, on the step's losses and mean D outputs (O(1) values)
KINDS = ("reference", "fast", "graphed")


# ---------------------------------------------------------------------------------------------
# graphs broken on purpose: the check must catch each


class FrozenScalars(GraphedStep):
    """Refreshes the named scalars until the capture, then never again (the bug of a graph that
    captured Python floats)."""

    frozen: tuple[str, ...] = ()

    def _refresh_scalars(self, step: int) -> None:
        kept = {name: self.values[name] for name in self.frozen}
        super()._refresh_scalars(step)
        if self.calls > WARMUP:  # the capture was at call WARMUP + 1
            for name, value in kept.items():
                self.fast.scalars[name].fill_(value)
                self.values[name] = value


class FrozenRates(FrozenScalars):
    frozen = ("lr_d", "lr_g")


class FrozenAverage(FrozenScalars):
    frozen = ("ema",)


class StaleInputs(GraphedStep):
    """Fills the static inputs up to the capture, then never again: every replay trains on the
    captured batch, latents and shifts."""

    def _load(self, inputs: tuple[torch.Tensor, ...]) -> None:
        if self.calls <= WARMUP + 1:
            super()._load(inputs)


BROKEN = {"learning rate frozen at capture": FrozenRates, "stale inputs": StaleInputs,
          "moving-average weight frozen at capture": FrozenAverage}
BREAK_NAMES = {"lr": "learning rate frozen at capture", "input": "stale inputs",
               "ema": "moving-average weight frozen at capture"}


# ---------------------------------------------------------------------------------------------
# trainers


def check_config(device: str, threads: int, batch_size: int, steps: int, steps_per_epoch: int,
                 dry_run: bool = False) -> TrainConfig:
    """The defaults, with a learning-rate decay that starts a quarter of the way in (so the rates a
    graph reads change during the check) and enough epochs of `steps_per_epoch` for `steps`."""
    config = TrainConfig()
    config.run.device, config.run.threads, config.run.dry_run = device, threads, dry_run
    config.run.eval_every, config.run.progress, config.run.log_every = 0, False, 10_000
    config.run.epochs = max(2, math.ceil(steps / steps_per_epoch))
    config.run.sample_every = config.run.checkpoint_every = 10_000  # only the final (or stop) checkpoint
    config.data.batch_size = batch_size
    config.optimizer.lr_decay_start = 0.25
    return config


def make_trainer(config: TrainConfig, kind: str, device: str, broken: type[GraphedStep] | None = None,
                 run_dir: Path | None = None, resume_state: dict | None = None) -> Trainer:
    """A Trainer on `device` whose step is `kind`: "reference" (autograd), "fast" (uncaptured, also on
    CUDA) or "graphed" (GraphedStep: captured on CUDA, its static-input path without a capture on the
    CPU), or the graph `broken`."""
    config = copy.deepcopy(config)
    config.run.device, config.run.train_step = device, "reference" if kind == "reference" else "fast"
    trainer = Trainer(validate(config), run_dir, World(), resume_state=resume_state)
    if kind == "fast" and isinstance(trainer._step, GraphedStep):
        trainer._step = FastStep(trainer.step_state)  # a fresh one: the graph's FastStep reads its rates from tensors
    if kind == "graphed" and (broken is not None or not isinstance(trainer._step, GraphedStep)):
        fast = FastStep(trainer.step_state) if isinstance(trainer._step, GraphedStep) else trainer._step
        trainer._step = (broken or GraphedStep)(fast, capture=trainer.device.type == "cuda")
    return trainer


def flat(trainer: Trainer, network: str) -> torch.Tensor:
    """All of a network's parameters in one float64 CPU vector."""
    return torch.cat([p.detach().reshape(-1) for p in getattr(trainer, network).parameters()]).double().cpu()


def cloned(value):
    """A copy of a state dict with every tensor on the CPU, as a checkpoint loads: a comparator
    restored from it must not share (and update) the candidate's Adam moments, which
    load_state_dict would keep by reference."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: cloned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cloned(item) for item in value]
    return value


class Schedule:
    """The batches and learning rates of Trainer.train, `steps_per_epoch` batches an epoch."""

    def __init__(self, trainer: Trainer, steps_per_epoch: int):
        self.trainer, self.steps_per_epoch = trainer, steps_per_epoch
        self.order: torch.Tensor | None = None

    def rows(self, step: int) -> torch.Tensor:
        """The rows (B,) of step `step`, after setting the epoch's learning rates."""
        epoch, index = divmod(step, self.steps_per_epoch)
        if index == 0 or self.order is None:
            self.order = self.trainer._epoch_order(epoch).cpu()
            self.trainer._set_learning_rates(epoch)
        batch = self.trainer.config.data.batch_size
        return self.order[index * batch:(index + 1) * batch]


# ---------------------------------------------------------------------------------------------
# the comparisons


def lockstep(candidate: Trainer, comparator: Trainer, steps: int, steps_per_epoch: int,
             cpu_draws: bool = False) -> dict:
    """`steps` steps of the candidate, each repeated by the comparator from the candidate's state.
    cpu_draws: the candidate (on CUDA) computes on the comparator's draws (a CPU generator's), so
    that a CUDA step can be held to a CPU step; else each draws its own (the same on one device)."""
    schedule, draws = Schedule(candidate, steps_per_epoch), FastStep(comparator.step_state) if cpu_draws else None
    errors: dict[str, list[float]] = {network: [] for network in NETWORKS}
    metric_errors, rates_seen, ema_still, rates_followed = [], set(), 0, True
    started = time.perf_counter()
    for step in range(steps):
        rows = schedule.rows(step)
        comparator._restore(cloned(candidate.state()))
        before = {network: flat(comparator, network) for network in NETWORKS}
        real_c, real_r = candidate.data[rows.to(candidate.device)], comparator.data[rows]
        if draws is not None:
            inputs = draws.inputs(comparator.step, real_r)  # the comparator's own draws for this step
            got = candidate._step.compute(candidate.step, *(x.to(candidate.device) for x in inputs))
        else:
            got = candidate.train_step(real_c)
        want = comparator.train_step(real_r)
        candidate.step += 1
        metric_errors.append((got.double().cpu() - want.double().cpu()).abs().max().item())
        for network in NETWORKS:
            update = (flat(comparator, network) - before[network]).norm().item()
            diff = (flat(candidate, network) - flat(comparator, network)).norm().item()
            errors[network].append(diff / update if update else (0.0 if diff == 0 else math.inf))
            if network == "generator_ema" and update == 0:
                ema_still += 1
        rates = (candidate.optimizer_d.param_groups[0]["lr"], candidate.optimizer_g.param_groups[0]["lr"])
        rates_seen.add(rates)
        if isinstance(candidate._step, GraphedStep):  # what the graph's tensors hold, against the schedule
            rates_followed &= (candidate._step.values["lr_d"], candidate._step.values["lr_g"]) == rates
    worst = {network: max(values) for network, values in errors.items()}
    first_bad = next((step for step in range(steps)
                      if any(errors[n][step] > STEP_TOLERANCE for n in NETWORKS)
                      or metric_errors[step] > METRIC_TOLERANCE), None)
    return {"steps": steps, "seconds": time.perf_counter() - started,
            "worst_step_error": worst, "worst_metric_error": max(metric_errors),
            "first_step_over_tolerance": first_bad,
            "passed": first_bad is None and rates_followed and ema_still == 0,
            "learning_rates_seen": len(rates_seen), "graph_rates_followed_schedule": rates_followed,
            "steps_without_moving_average_update": ema_still,
            "step_errors": {network: [float(f"{e:.3g}") for e in values] for network, values in errors.items()},
            "candidate": candidate.step_description if not isinstance(candidate._step, GraphedStep)
            else f"{type(candidate._step).__name__} (capture={candidate._step.capture})",
            "comparator": f"{comparator.device.type} {comparator.config.run.train_step}"}


def run_alone(trainer: Trainer, steps: int, steps_per_epoch: int) -> dict[str, torch.Tensor]:
    """`steps` steps on the trainer's own draws; its weights after them."""
    schedule = Schedule(trainer, steps_per_epoch)
    for step in range(steps):
        trainer.train_step(trainer.data[schedule.rows(step).to(trainer.device)])
        trainer.step += 1
    return {network: flat(trainer, network) for network in NETWORKS}


def compare_runs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> dict:
    """Two runs' final weights: identical?, and |a - b| over how far a moved from `start`, per network."""
    return {"identical": all(torch.equal(a[n], b[n]) for n in NETWORKS),
            "relative_distance": {n: ((a[n] - b[n]).norm() / (a[n] - start[n]).norm()).item() for n in NETWORKS},
            "max_abs_diff": {n: (a[n] - b[n]).abs().max().item() for n in NETWORKS}}


def resume_exactness(config: TrainConfig, kind: str, device: str, folder: Path, stop_at: int) -> dict:
    """Trainer.train whole, and stopped after `stop_at` steps, checkpointed, resumed to the end by a
    fresh Trainer: the final weights, moving average and Adam moments must agree bit for bit."""
    from training import checkpoint
    from training.rundir import new_run_dir

    def train(name: str, on_step: Callable | None = None, state: dict | None = None) -> Trainer:
        run_dir = folder / name
        if state is None:
            run_dir = new_run_dir(str(folder), name, overwrite=True)
        trainer = make_trainer(config, kind, device, run_dir=run_dir, resume_state=state)
        trainer.train(on_step=on_step)
        return trainer

    def stop(trainer: Trainer) -> None:
        if trainer.step == stop_at:
            trainer.stop_requested = True

    started = time.perf_counter()
    whole = train(f"{kind}-whole")
    train(f"{kind}-stopped", on_step=stop)
    state, _ = checkpoint.load_latest(folder / f"{kind}-stopped")
    assert state["step"] == stop_at, state["step"]
    resumed = train(f"{kind}-stopped", state=state)
    a, b = whole.state(), resumed.state()
    differing = [f"{network}.{key}" for network in NETWORKS for key in a[network]
                 if not torch.equal(a[network][key], b[network][key])]
    for optimizer in ("optimizer_g", "optimizer_d"):
        for slot, values in a[optimizer]["state"].items():
            differing += [f"{optimizer}[{slot}].{name}" for name in ("exp_avg", "exp_avg_sq", "step")
                          if not torch.equal(values[name], b[optimizer]["state"][slot][name])]
    return {"kind": kind, "device": device, "steps": whole.step, "stopped_after": stop_at,
            "step_description": whole.step_description, "identical": not differing and whole.step == resumed.step,
            "differing": differing[:10], "seconds": time.perf_counter() - started}
