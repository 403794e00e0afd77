"""Process-group helpers (detectron2.utils.comm, trimmed). Safe to call without torch.distributed."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = [
    "get_world_size",
    "get_rank",
    "get_local_rank",
    "get_local_size",
    "set_local_rank",
    "rank_and_world",
    "is_distributed",
    "is_main_process",
    "synchronize",
    "reduce_mean",
    "all_reduce_sum",
    "all_gather_object",
]

_LOCAL_RANK = 0


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if _initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if _initialized() else 0


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    return get_rank(), get_world_size()


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return get_world_size() > 1


def get_local_rank() -> int:
    """Rank of this process on its machine (set by ``launch``)."""
    return _LOCAL_RANK if _initialized() else 0


def get_local_size() -> int:
    """Processes on this machine: torchrun's ``LOCAL_WORLD_SIZE``, else the world (one machine)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", get_world_size()))


def set_local_rank(rank: int) -> None:
    global _LOCAL_RANK
    _LOCAL_RANK = int(rank)


def is_main_process() -> bool:
    return get_rank() == 0


def _device() -> torch.device:
    if _initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def synchronize() -> None:
    """Barrier across all ranks (no-op in a single process)."""
    if get_world_size() > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a new tensor on ``t``'s device)."""
    if get_world_size() == 1:
        return t.clone()
    out = t.detach().to(_device()).clone()
    dist.all_reduce(out)
    return out.to(t.device)


def reduce_mean(values: dict[str, float | torch.Tensor]) -> dict[str, float]:
    """Mean over ranks of a dict of scalars (same keys in the same order on every rank).

    Tensors are stacked on their device so one host sync serves the whole dict.
    """
    keys = list(values)
    if not keys:
        return {}
    vals = [values[k] for k in keys]
    dev = next((v.device for v in vals if isinstance(v, torch.Tensor)), torch.device("cpu"))
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=dev).detach().reshape(()) for v in vals])
    if get_world_size() > 1:
        t = all_reduce_sum(t) / get_world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def all_gather_object(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank (``[obj]`` in a single process)."""
    if get_world_size() == 1:
        return [obj]
    out = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out
