"""Process-group set-up for `torchrun --nproc_per_node=N -m training.run` (one process per rank)."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:  # rank 0 alone writes files and shows progress
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world() -> World:
    """Join the process group torchrun describes in the environment; a plain run is a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return World(rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")), size=size)


def close_world(world: World, finished: bool = False) -> None:
    """Leave the process group. After a finished run, first wait for every rank: rank 0 still writes
    grids, plots and the package while the others are done, and a gloo rank that tears down its
    connections while a peer is still busy can abort ("terminate called without an active exception").
    After an error, skip the wait: a peer may be gone or stuck in a collective."""
    if world.distributed and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def sum_over_ranks(tensor: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
