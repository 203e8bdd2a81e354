"""torch.distributed, the little the loops need: start the group, ask the rank, wait, sum.

Launched by ``torchrun`` (``WORLD_SIZE > 1``), :func:`init_distributed` starts the process group
(NCCL on CUDA, gloo on CPU) and pins the local GPU; launched plainly, every function here is a
no-op that answers "rank 0 of 1", so single-process code needs no branches.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed() -> tuple[int, int]:
    """(rank, world_size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def sum_over_processes(values: dict[str, float]) -> dict[str, float]:
    """Each key summed over every process (one all-reduce); the dict itself when alone."""
    if not dist.is_initialized():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))
