"""Train the GAN: `python -m training.run [--config FILE] [--key value ...] [--resume RUN_DIR]`.

Several processes: `torchrun --nproc_per_node=N -m training.run ...` (DistributedDataParallel).
Ctrl-C or SIGTERM saves a checkpoint at the current step; `--resume RUN_DIR` continues from it.
"""

import shutil
import signal
import sys
from pathlib import Path

from ganpack import built_in_models
from ganpack.errors import counted, run_command
from training.config import DATASETS, TrainConfig, parse_command_line, set_value, usage, validate
from training.errors import ConfigError
from training.rundir import new_run_dir, write_config

# On resume the model, optimizer and data must stay as they were; these may change. `data` may
# name another path to the same images (moved, or given relative to another folder): the trainer
# compares their SHA-256 with the checkpoint's (training/datasets.py, check_resumed_data).
RESUMABLE_OVERRIDES = {"epochs", "device", "threads", "log_every", "sample_every", "checkpoint_every",
                       "keep_checkpoints", "progress", "export", "data", "data_dir", "cache_dir", "eval_every",
                       "eval_samples", "evaluator_cache", "train_step"}


def absolute_data(data: str) -> str:
    """`data` as a run records it: a data set's name as it is, a path made absolute, so that a
    resume from another folder finds it (the package records only its base name)."""
    return data if data in DATASETS or not data else str(Path(data).expanduser().absolute())


def resume_config(state: dict, overrides: dict) -> TrainConfig:
    from training.datasets import recorded_source  # numpy: after the arguments are checked

    config = TrainConfig.from_dict(state["config"])
    for key, value in overrides.items():
        if key not in RESUMABLE_OVERRIDES:
            raise ConfigError(f"'--{key}' cannot change on --resume (only {sorted(RESUMABLE_OVERRIDES)})")
        set_value(config, key, value, source="the command line")
    data = config.data.data
    if "data" in overrides and recorded_source(state) is None:
        raise ConfigError(f"'--data' cannot change on --resume of this run: its checkpoint records no SHA-256 "
                          f"of its data to check '{data}' against")
    # moved since, or recorded relative to the folder the run started in (as before paths were made absolute)
    if "data" not in overrides and data not in DATASETS and not Path(data).expanduser().exists():
        raise ConfigError(f"the run's data '{data}' is not found from '{Path.cwd()}'; pass --data with its path "
                          "(its images must be the run's: their SHA-256 is checked)")
    config.data.data = absolute_data(data)
    return validate(config)


def load_hint(package: Path) -> str:
    """How to load this run's package: by its path. A bare name is a model inside ganpack, so a run
    named like one (`--name conditional`) is not what `ganpack.load(name)` opens: say so."""
    hint, name = f"load it in Python with ganpack.load({str(package)!r})", package.parent.name
    if name in built_in_models():
        hint += f"; ganpack.load({name!r}) opens ganpack's built-in model of that name, not this run"
    return hint


def install_stop_handlers(trainer) -> dict:
    """First Ctrl-C or SIGTERM: finish the step, checkpoint, exit. A second Ctrl-C stops at once.
    Returns the handlers it replaced, for restore_handlers."""

    def request_stop(signum, _frame):
        trainer.stop_requested = True
        trainer.stop_signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    return {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}


def restore_handlers(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(usage())
        return 0
    command_line = parse_command_line(argv)
    # torch is imported here, after the arguments are checked: a mistake is reported at once
    from training import checkpoint
    from training.distributed import close_world, init_world
    from training.trainer import Trainer

    world = init_world()
    say = print if world.is_main else (lambda *args, **kwargs: None)
    finished = False
    try:
        if command_line.resume:
            run_dir = Path(command_line.resume)
            for stale in checkpoint.remove_partial_writes(run_dir) if world.is_main else []:
                say(f"removed '{stale}', a checkpoint write that did not finish")
            state, path = checkpoint.load_latest(run_dir, warn=say, needed=checkpoint.RESUME_KEYS)
            config = resume_config(state, command_line.overrides)
            say(f"resuming {run_dir} from {path.name} (epoch {state['epoch']}, step {state['step']})")
        else:
            state, config = None, command_line.config
            config.data.data = absolute_data(config.data.data)  # config.json and checkpoints record it so
            run_dir = new_run_dir(config.run.out_dir, config.run.name, config.run.overwrite) \
                if world.is_main else None
            if run_dir is not None:
                write_config(run_dir, config.to_dict())
        try:
            trainer = Trainer(config, run_dir, world, resume_state=state)
        except BaseException:  # no device, no data, a batch too big: a retry must not find the name taken
            if state is None and run_dir is not None:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        say(f"device: {trainer.device}" + (f" x {world.size} processes" if world.distributed else "")
            + f"; {counted(len(trainer.data), 'image')}, {counted(trainer.steps_per_epoch, 'step')} per epoch, "
            f"global batch {trainer.global_batch}; train step: {trainer.step_description}; run folder: {run_dir}")
        previous_handlers = install_stop_handlers(trainer)
        try:
            finished = trainer.train()
        finally:
            restore_handlers(previous_handlers)
        if not finished:
            say(f"stopped at epoch {trainer.epoch}, step {trainer.step}; checkpoint saved. "
                f"Continue with: python -m training.run --resume {run_dir}")
            return 128 + getattr(trainer, "stop_signal", signal.SIGTERM)
        say(f"done: {trainer.epochs} epochs, {trainer.step} steps in {trainer.elapsed:.0f} s. "
            f"Samples: {run_dir and run_dir / 'samples' / 'final.png'}")
        if config.run.export and world.is_main:
            # training's one import of export (tests/test_layering.py), here so that onnx and
            # onnxruntime load only when a package is written
            from export.package import write_package

            package = write_package(trainer.state(), run_dir / "model", overwrite=True, log=say,
                                    quality=trainer.final_quality)
            say(f"model package: {package}\n{load_hint(package)}")
        finished = True
        return 0
    finally:
        close_world(world, finished)


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
