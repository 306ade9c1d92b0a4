"""One run over several processes (GPUs) under `torchrun --nproc_per_node N`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; `init` starts the process group (NCCL on CUDA, gloo
on CPU) and pins the rank to GPU LOCAL_RANK. The engine then wraps the model in
DistributedDataParallel and gives each rank a contiguous shard of every global batch (the
global batch size and the learning-rate recipe stay those of the config); evaluation,
checkpoints and the run record happen on rank 0 and the other ranks receive its numbers.
Without torchrun (WORLD_SIZE unset or 1) every function here is a no-op."""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def launched() -> bool:
    """True under torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: str = "auto") -> torch.device:
    """Start the process group once (idempotent) and return this rank's device."""
    cuda = device != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return world()[0] == 0


def shard(n: int, rank: int, size: int) -> slice:
    """Rank `rank`'s contiguous part of a batch of n (parts differ by at most one)."""
    return slice(rank * n // size, (rank + 1) * n // size)


def from_main(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over the ranks (in place)."""
    if world()[1] > 1:
        dist.all_reduce(t)
    return t


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()
