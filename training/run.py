"""Train the GAN: `python -m training.run [--config FILE] [--key value ...] [--resume RUN_DIR]`.

Several processes: `torchrun --nproc_per_node=N -m training.run ...` (DistributedDataParallel).
Ctrl-C or SIGTERM saves a checkpoint at the current step; `--resume RUN_DIR` continues from it.
"""

import shutil
import signal
import sys
from pathlib import Path

from ganpack.errors import run_command
from training.config import TrainConfig, parse_command_line, set_value, usage, validate
from training.errors import ConfigError
from training.rundir import new_run_dir, write_config

# On resume the model, optimizer and data must stay as they were; these may change.
RESUMABLE_OVERRIDES = {"epochs", "device", "threads", "log_every", "sample_every", "checkpoint_every",
                       "keep_checkpoints", "progress", "export", "data_dir", "cache_dir", "eval_every",
                       "eval_samples", "evaluator_cache", "train_step"}


def resume_config(state: dict, overrides: dict) -> TrainConfig:
    config = TrainConfig.from_dict(state["config"])
    for key, value in overrides.items():
        if key not in RESUMABLE_OVERRIDES:
            raise ConfigError(f"'--{key}' cannot change on --resume (only {sorted(RESUMABLE_OVERRIDES)})")
        set_value(config, key, value, source="the command line")
    return validate(config)


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
            state, path = checkpoint.load_latest(run_dir, warn=say)
            config = resume_config(state, command_line.overrides)
            say(f"resuming {run_dir} from {path.name} (epoch {state['epoch']}, step {state['step']})")
        else:
            state, config = None, command_line.config
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
            + f"; {len(trainer.data)} images, {trainer.steps_per_epoch} steps per epoch, "
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
            say(f"model package: {package}")
        finished = True
        return 0
    finally:
        close_world(world, finished)


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
