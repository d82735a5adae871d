"""The GAN training loop: one Trainer owns the models, optimizers, data and run folder, and runs
the loop, the logging, the evaluations and the checkpoints. The training step itself is a unit of
its own, built from the trainer's StepState (training/reference_step.py, fast_step.py, graphed_step.py).

Randomness is stateless where it matters for exact resume: the data order of epoch e comes from
a generator seeded with (seed, e), and the noise of step t on rank r from one seeded with
(seed, r, t). A run stopped anywhere and resumed therefore sees the same batches and latents.
"""

import copy
import math
import shutil
import time
from pathlib import Path

import torch

from training import checkpoint, datasets, mnist
from training.config import TrainConfig
from training.distributed import World, sum_over_ranks
from training.errors import ConfigError, TrainingError
from training.fast_step import FastStep
from training.graphed_step import GraphedStep
from training.model import balanced_labels, build_models, grid_labels, sample_latent
from training.reference_step import ReferenceStep, Step, StepNoise, StepState, mix_seed
from training.rundir import MetricsLog, plot_metrics, plot_quality

GRID_SIZE = 100  # the fixed latent batch behind every sample grid (10 x 10)
DRY_RUN_IMAGES = 1024  # four steps of the default batch per epoch
DRY_RUN_EPOCHS = 2
EVAL_SEED = 2024  # the latents behind every quality evaluation of a run
FINAL_EVAL_SAMPLES = 10000
RUN_FOLDER_EXTRA_BYTES = 50_000_000  # sample grids, logs, plots and the exported package, generously


def resolve_device(name: str, world: World) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available() and not world.distributed:
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{name}' requested but CUDA is not available")
        if world.distributed:
            return torch.device("cuda", world.local_rank)
        index = int(name[len("cuda:"):] or 0)  # the config allows only "cuda" and "cuda:<digits>"
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{name}' requested but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        return torch.device(name)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available")
    return torch.device(name)


def build_step(state: StepState, train_step: str) -> tuple[Step, str]:
    """The step the config's train_step names, built from `state`, and its description for the
    run's first line. "fast" is captured in a CUDA graph on CUDA outside DDP."""
    if train_step == "reference":
        return ReferenceStep(state), "reference (autograd)"
    fast = FastStep(state)
    if state.device.type == "cuda" and not state.world.distributed:
        return GraphedStep(fast, capture=True), "fast, captured in a CUDA graph (training/graphed_step.py)"
    return fast, "fast (training/fast_step.py)"


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path | None, world: World,
                 resume_state: dict | None = None):
        self.config, self.run_dir, self.world = config, run_dir, world
        run = config.run
        if run.threads:
            torch.set_num_threads(run.threads)
        self.device = resolve_device(run.device, world)

        # data: the whole set in one (N, 784) tensor on the device, in [-1, 1]
        dataset = datasets.load_dataset(config.data.data, config.data.data_dir, config.data.cache_dir)
        datasets.check_resumed_data(dataset.source, resume_state)
        images, labels = dataset.images, dataset.labels  # (N, 28, 28) uint8; (N,) int64 or None: unlabeled
        self.data_source = dataset.source  # provenance (no paths), kept in checkpoints for the package
        self.classes = self._class_count(dataset)  # 0: unconditional
        names = dataset.class_names or []  # the package records them: "0".."9", or Fashion-MNIST's
        self.class_names = [*names, *map(str, range(len(names), self.classes))][:self.classes]
        self.quality = None  # the evaluator, on rank 0 when eval_every > 0 (not in dry runs)
        if run.eval_every and world.is_main and not run.dry_run:
            from training.evaluate import quality_evaluator

            self.quality = quality_evaluator(dataset, run.evaluator_cache, log=print)  # None: cannot score
        self.final_quality = {}
        if run.dry_run:
            images = images[:DRY_RUN_IMAGES]
            run.sample_every = run.checkpoint_every = 1
        self.data = mnist.to_training_tensor(images, self.device)
        self.labels = None  # (N,) int64 on the device, for a conditional model
        if self.classes:
            self.labels = torch.from_numpy(labels[:len(images)].astype("int64")).to(self.device)
        self.epochs = min(run.epochs, DRY_RUN_EPOCHS) if run.dry_run else run.epochs
        self.global_batch = config.data.batch_size * world.size
        self.steps_per_epoch = len(self.data) // self.global_batch
        if self.steps_per_epoch == 0:
            raise ConfigError(f"batch_size {config.data.batch_size} x {world.size} process(es) exceeds "
                              f"the {len(self.data)} training images")

        # models: the same seed on every rank (the step's DDP wrappers also broadcast rank 0's weights)
        torch.manual_seed(run.seed)
        self.generator, self.discriminator = (m.to(self.device) for m in build_models(config.model))
        opt = config.optimizer
        # the fast step uses Adam's fused kernel (where torch has one); the reference step torch's default
        self.fused_adam = run.train_step == "fast" and self.device.type in ("cpu", "cuda")
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=opt.generator_lr,
                                            betas=(opt.beta1, opt.beta2), fused=self.fused_adam or None)
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=opt.discriminator_lr,
                                            betas=(opt.beta1, opt.beta2), fused=self.fused_adam or None)
        # The moving average of G's weights is what samples and exports use when enabled: it
        # smooths out the step-to-step jitter of adversarial training.
        self.generator_ema = (copy.deepcopy(self.generator).requires_grad_(False)
                              if opt.ema_decay > 0 else None)
        # what the training step reads and updates; the step itself is built below, after a resume
        self.step_state = StepState(
            self.generator, self.discriminator, self.optimizer_g, self.optimizer_d,
            StepNoise(run.seed, world.rank, self.device), config.model, label_smoothing=opt.label_smoothing,
            r1_gamma=opt.r1_gamma, augment_shift=opt.augment_shift, ema_decay=opt.ema_decay,
            generator_ema=self.generator_ema, world=world)
        fixed = torch.Generator().manual_seed(run.seed)
        self.fixed_latent = sample_latent(GRID_SIZE, config.model, fixed, torch.device("cpu")).to(self.device)
        self.fixed_labels = grid_labels(GRID_SIZE, self.classes).to(self.device) if self.classes else None

        self.epoch, self.step_in_epoch, self.step, self.elapsed = 0, 0, 0, 0.0
        self.stop_requested = False
        if resume_state is not None:
            self._restore(resume_state)
        self._step, self.step_description = build_step(self.step_state, run.train_step)
        if run_dir is not None and world.is_main:
            self._check_free_space()

    def _class_count(self, dataset: datasets.Dataset) -> int:
        """0 for an unconditional model; else the number of classes, from the data, which must have
        labels and no more classes than the config's `classes` where that is set. The config records it."""
        model = self.config.model
        if not model.conditional:
            return 0
        if dataset.labels is None:
            raise ConfigError(f"conditional training needs labeled data; '{self.config.data.data}' has no labels "
                              "(put the images in one subfolder per class, or give .npz labels)")
        found = max(len(dataset.class_names or []), int(dataset.labels.max()) + 1)
        if model.classes and found > model.classes:
            raise ConfigError(f"classes {model.classes}: the data has {found} classes (labels up to {found - 1})")
        model.classes = model.classes or found
        return model.classes

    # -----------------------------------------------------------------------------------------
    # state

    def state(self) -> dict:
        state = {
            "config": self.config.to_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "step": self.step,
            "elapsed": self.elapsed, "world_size": self.world.size, "data_source": self.data_source,
        }
        if self.generator_ema is not None:
            state["generator_ema"] = self.generator_ema.state_dict()
        if self.classes:
            state["class_names"] = list(self.class_names)
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def _restore(self, state: dict) -> None:
        if state["world_size"] != self.world.size:
            raise TrainingError(f"checkpoint was written by {state['world_size']} process(es); resume "
                                f"it with the same number, not {self.world.size}")
        parts = [(self.generator, "generator"), (self.discriminator, "discriminator"),
                 (self.optimizer_g, "optimizer_g"), (self.optimizer_d, "optimizer_d")]
        if self.generator_ema is not None:
            parts.append((self.generator_ema, "generator_ema"))
        for part, key in parts:
            try:
                part.load_state_dict(state[key])
            except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as error:  # missing, misshapen
                detail = " ".join(str(error).split())  # torch's message spans lines
                raise TrainingError(f"cannot resume: the checkpoint's '{key}' does not fit the run's model: "
                                    f"{detail}") from None
        for optimizer in (self.optimizer_g, self.optimizer_d):
            for group in optimizer.param_groups:  # the checkpoint's step mode may have been the other one
                group["fused"], group["foreach"] = self.fused_adam or None, None
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.step, self.elapsed = state["step"], state["elapsed"]

    def _check_free_space(self) -> None:
        """Refuse to start when the run folder's disk cannot hold the checkpoints this run keeps
        (one more while the newest is written), plus room for grids, logs and the package."""
        one = checkpoint.checkpoint_bytes(self.state())
        needed = (self.config.run.keep_checkpoints + 1) * one + RUN_FOLDER_EXTRA_BYTES
        free = shutil.disk_usage(self.run_dir).free
        if free < needed:
            raise TrainingError(f"not enough free space for run folder '{self.run_dir}': {free / 1e6:.1f} MB "
                                f"free, about {needed / 1e6:.1f} MB needed ({self.config.run.keep_checkpoints} + 1 "
                                f"checkpoints of {one / 1e6:.1f} MB, plus grids, logs and the model package)")

    def save_checkpoint(self) -> Path | None:
        if not self.world.is_main:
            return None
        path = checkpoint.checkpoint_path(self.run_dir, self.step)
        checkpoint.save_checkpoint(self.state(), path)
        checkpoint.prune_checkpoints(self.run_dir, self.config.run.keep_checkpoints)
        return path

    # -----------------------------------------------------------------------------------------
    # one step

    def _set_learning_rates(self, epoch: int) -> None:
        """Constant, then linear decay to zero over the epochs after lr_decay_start (a fraction)."""
        opt = self.config.optimizer
        decay_epochs = self.epochs * (1.0 - opt.lr_decay_start)
        remaining = self.epochs - epoch
        factor = min(1.0, remaining / decay_epochs) if decay_epochs > 0 else 1.0
        for optimizer, rate in ((self.optimizer_g, opt.generator_lr), (self.optimizer_d, opt.discriminator_lr)):
            for group in optimizer.param_groups:
                group["lr"] = rate * factor

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        order = torch.Generator().manual_seed(mix_seed(self.config.run.seed, epoch))
        return torch.randperm(len(self.data), generator=order).to(self.device, non_blocking=True)

    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Step number self.step on a real batch (B, 784) and, for a conditional model, its labels
        (B,): one D update then one G update; returns detached [loss_d, loss_g, mean D(x), mean
        D(G(z))] on the device (no host sync). The config's train_step picks the step (build_step)."""
        return self._step(self.step, real, labels)

    # -----------------------------------------------------------------------------------------
    # the loop

    def train(self, on_step=None) -> bool:
        """Train to the last epoch; returns False when stopped early by request (a checkpoint is saved)."""
        run, world = self.config.run, self.world
        batch = self.config.data.batch_size
        metrics = MetricsLog(self.run_dir / "metrics.jsonl", self.step) if world.is_main else None
        if self.quality is not None:  # on resume, forget evaluations past the checkpoint
            MetricsLog(self.run_dir / "quality.jsonl", self.step).close()
        total = self.epochs * self.steps_per_epoch
        bar = self._progress_bar(total)
        running = torch.zeros(4, device=self.device)
        count = 0
        started = time.perf_counter() - self.elapsed
        try:
            while self.epoch < self.epochs:
                order = self._epoch_order(self.epoch)
                self._set_learning_rates(self.epoch)
                while self.step_in_epoch < self.steps_per_epoch:
                    if self._stop_agreed():
                        self.elapsed = time.perf_counter() - started
                        self._check_finite(running, count)
                        self.save_checkpoint()
                        return False
                    first = (self.step_in_epoch * world.size + world.rank) * batch
                    rows = order[first:first + batch]
                    running += self.train_step(self.data[rows], None if self.labels is None else self.labels[rows])
                    count += 1
                    self.step += 1
                    self.step_in_epoch += 1
                    if bar is not None:
                        bar.update(1)
                    if self.step % run.log_every == 0:
                        self.elapsed = time.perf_counter() - started
                        self._log(running, count, metrics, bar)
                        running.zero_()
                        count = 0
                    if on_step is not None:
                        on_step(self)
                self.epoch += 1
                self.step_in_epoch = 0
                self.elapsed = time.perf_counter() - started
                if count:  # close the epoch's window so every epoch has a line and a NaN check
                    self._log(running, count, metrics, bar)
                    running.zero_()
                    count = 0
                self._end_of_epoch()
        finally:
            if bar is not None:
                bar.close()
            if metrics is not None:
                metrics.close()
                plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "metrics.png")
        return True

    def _stop_agreed(self) -> bool:
        """Whether to stop before this step. One process stops as soon as it is asked. Under torchrun
        every rank gets the signal, but each at a step of its own: the ranks agree every log_every
        steps (an all-reduce of their flags), so that all stop at one step and none is left waiting
        in a collective for a peer that has gone."""
        if not self.world.distributed:
            return self.stop_requested
        if self.step % self.config.run.log_every:
            return False
        flag = torch.tensor([float(self.stop_requested)], device=self.device)
        return sum_over_ranks(flag, self.world).item() > 0

    def _end_of_epoch(self) -> None:
        run, last = self.config.run, self.epoch == self.epochs
        if self.world.is_main and (self.epoch % run.sample_every == 0 or last):
            self.save_samples(self.run_dir / "samples" / f"epoch_{self.epoch:04d}.png")
        if self.epoch % run.checkpoint_every == 0 or last:
            self.save_checkpoint()
        if last and self.world.is_main:
            self.save_samples(self.run_dir / "samples" / "final.png")
        if self.quality is not None and (self.epoch % run.eval_every == 0 or last):
            self._evaluate(FINAL_EVAL_SAMPLES if last else run.eval_samples, last)

    def _reduce(self, running: torch.Tensor, count: int) -> list[float]:
        """Mean over the window and over ranks; this is the loop's one host sync."""
        totals = sum_over_ranks(running.clone(), self.world)
        return (totals / (max(count, 1) * self.world.size)).tolist()

    def _check_finite(self, running: torch.Tensor, count: int) -> None:
        if count and not all(math.isfinite(v) for v in self._reduce(running, count)):
            self._raise_non_finite()

    def _raise_non_finite(self):
        raise TrainingError(f"non-finite loss in epoch {self.epoch + 1} before step {self.step}; "
                                "stopping. The last good checkpoint is kept in "
                                f"'{self.run_dir / 'checkpoints' if self.run_dir else '-'}'")

    def _log(self, running: torch.Tensor, count: int, metrics: MetricsLog | None, bar) -> None:
        loss_d, loss_g, d_real, d_fake = values = self._reduce(running, count)
        if not all(math.isfinite(v) for v in values):
            self._raise_non_finite()
        record = {"step": self.step, "epoch": self.epoch + self.step_in_epoch / self.steps_per_epoch,
                  "loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake,
                  "wall_time": round(self.elapsed, 3)}
        if metrics is not None:
            metrics.write(record)
        if bar is not None:
            bar.set_description(self.epoch_label())
            bar.set_postfix_str(f"D {loss_d:.3f}  G {loss_g:.3f}  D(x) {d_real:.2f}  D(G(z)) {d_fake:.2f}")

    def epoch_label(self) -> str:
        """The progress bar's label: the epoch in progress, 1-based; the last one once the run is done
        (self.epoch is then self.epochs)."""
        return f"epoch {min(self.epoch + 1, self.epochs)}/{self.epochs}"

    def _progress_bar(self, total: int):
        if not (self.world.is_main and self.config.run.progress):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True,
                    desc=self.epoch_label())

    @torch.no_grad()
    def _evaluate(self, samples: int, last: bool) -> None:
        """Quality of the sampling generator on `samples` fixed-seed latents, into quality.jsonl."""
        latent = sample_latent(samples, self.config.model, torch.Generator().manual_seed(EVAL_SEED),
                               torch.device("cpu")).to(self.device)
        # conditional: every class equally often; the evaluator checks each image shows its class
        labels = balanced_labels(samples, self.classes) if self.classes else None
        images, _ = self.sampling_generator(latent, None if labels is None else labels.to(self.device))
        metrics = self.quality.metrics(images, labels=labels)
        log = MetricsLog(self.run_dir / "quality.jsonl")
        log.write({"epoch": self.epoch, "step": self.step, **metrics})
        log.close()
        if last:
            self.final_quality = {**metrics, "classifier_accuracy": self.quality.classifier.held_out_accuracy,
                                  "reference_real": self.quality.metrics(
                                      self.quality.classifier.held_out_images,
                                      labels=self.quality.classifier.held_out_labels if self.classes else None)}
        plot_quality(self.run_dir / "quality.jsonl", self.run_dir / "quality.png")
        from tqdm import tqdm

        tqdm.write(f"epoch {self.epoch}: Frechet distance {metrics['frechet_distance']:.1f}, classifier score "
                   f"{metrics['classifier_score']:.2f}, rarest class {metrics['rarest_class_fraction']:.1%}"
                   + (f", label agreement {metrics['label_agreement']:.1%}" if "label_agreement" in metrics else "")
                   + f" ({samples} samples)")

    @property
    def sampling_generator(self):
        """The weights to sample and export: the moving average when enabled."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def save_samples(self, path: Path) -> None:
        from ganpack.grid import save_grid

        images, _ = self.sampling_generator(self.fixed_latent, self.fixed_labels)  # (100, 784) in [-1, 1]
        save_grid(images.float().cpu().numpy(), path, columns=10)
