"""Multi-process launch: ``--num-gpus N`` spawns N DDP workers; torchrun/elastic environments are detected.

On machines without CUDA the workers use the gloo backend on CPU (one process per requested "GPU"),
which is how multi-process training is tested without GPUs.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import comm

__all__ = ["launch", "DEFAULT_TIMEOUT"]

logger = logging.getLogger(__name__)
DEFAULT_TIMEOUT = timedelta(minutes=30)


def _find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _torchrun_env() -> bool:
    """True when this process was started by torchrun (or another env:// launcher)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def launch(
    main_func,
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args=(),
    timeout: timedelta = DEFAULT_TIMEOUT,
):
    """Runs ``main_func(*args)`` in every process of the job.

    Args:
        num_gpus_per_machine: processes per machine (GPUs, or CPU workers on a machine without CUDA).
        num_machines, machine_rank: multi-machine layout; ``dist_url`` is then ``tcp://host:port``
            of machine 0 (``"auto"`` picks a free local port, single machine only).
    Under torchrun (RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* set) the process group is initialised from the
    environment and the arguments above are ignored.
    """
    if _torchrun_env() and int(os.environ["WORLD_SIZE"]) > 1:
        local_rank = int(os.environ["LOCAL_RANK"])
        _init_worker(local_rank, "env://", None, None, timeout)
        return _run(main_func, args)
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        return main_func(*args)
    if dist_url in (None, "auto"):
        if num_machines != 1:
            raise ValueError("dist_url='auto' only works on one machine; pass --dist-url tcp://<host>:<port>")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// init needs a shared file system across machines")
    if torch.cuda.is_available() and num_gpus_per_machine > torch.cuda.device_count():
        raise ValueError(
            f"--num-gpus {num_gpus_per_machine} but only {torch.cuda.device_count()} GPUs visible"
        )
    mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout),
        daemon=False,
        start_method="spawn",
    )


def _init_worker(local_rank, dist_url, world_size, rank, timeout):
    backend = _backend()
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    kwargs = {} if world_size is None else {"world_size": world_size, "rank": rank}
    dist.init_process_group(backend=backend, init_method=dist_url, timeout=timeout, **kwargs)
    comm.set_local_rank(local_rank)
    comm.synchronize()


def _run(main_func, args):
    try:
        return main_func(*args)
    finally:
        if dist.is_initialized():
            # DDP models left in reference cycles by main_func would keep the process group alive until
            # interpreter shutdown, where gloo's teardown can abort the process: free them first.
            gc.collect()
            dist.destroy_process_group()


def _distributed_worker(local_rank, main_func, world_size, nproc, machine_rank, dist_url, args, timeout):
    _init_worker(local_rank, dist_url, world_size, machine_rank * nproc + local_rank, timeout)
    _run(main_func, args)
