"""torch.distributed in one place: set up from torchrun's environment, average across ranks.

Under ``torchrun --nproc_per_node=N`` the variables ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` are set; the backend is NCCL on CUDA and gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch_dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch_dist.init_process_group(backend=backend)
    return DistInfo(rank, world_size, local_rank)


def mean_across_ranks(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Element-wise mean over ranks (mmdet all-reduces its log variables the same way)."""
    if not info.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch_dist.all_reduce(tensor)
    return (tensor / info.world_size).tolist()


def max_across_ranks(value: int, info: DistInfo, device: torch.device) -> int:
    if not info.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.MAX)
    return int(tensor.item())


def barrier(info: DistInfo) -> None:
    if info.distributed:
        torch_dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.distributed and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
