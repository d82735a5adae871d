"""Run under torchrun by test_distributed.py: train a tiny GAN with DDP, save this rank's weights."""

import sys
import time
from pathlib import Path

import torch

from training.config import TrainConfig
from training.distributed import close_world, init_world
from training.rundir import new_run_dir
from training.trainer import Trainer

out = Path(sys.argv[1])
world = init_world()
config = TrainConfig()
config.run.dry_run, config.run.progress, config.run.threads, config.run.log_every = True, False, 1, 1
config.run.out_dir, config.run.name = str(out / "runs"), "ddp"
config.data.batch_size = 128  # per rank: a global batch of 256 over 2 ranks
run_dir = new_run_dir(config.run.out_dir, config.run.name, overwrite=False) if world.is_main else None
trainer = Trainer(config, run_dir, world)
trainer.train()
torch.save({"generator": trainer.generator.state_dict(), "discriminator": trainer.discriminator.state_dict(),
            "world_size": world.size, "steps": trainer.step}, out / f"rank{world.rank}.pt")
if world.is_main:  # rank 0 is busy longer at the end (grids, plots, the package) while rank 1 is done
    time.sleep(1.0)
close_world(world, finished=True)
