"""Command-line parsing, run setup (output folder, logging, saved config, seeding), DDP wrapping."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys

import numpy as np
import torch

from ..utils import comm
from ..utils.fileio import remove_stale_temporaries
from .train_config import ConfigValueError, check_choice, train_value

__all__ = [
    "default_argument_parser",
    "default_setup",
    "setup_logger",
    "seed_all_rng",
    "seed_from_config",
    "set_cpu_threads",
    "create_ddp_model",
    "resolve_device",
    "default_writers",
    "save_config_file",
]

logger = logging.getLogger("softlabelseg.engine")
_HANDLER_TAG = "_softlabelseg_handler"


def default_argument_parser(epilog: str | None = None) -> argparse.ArgumentParser:
    """detectron2's arguments: config file, resume/eval-only, launch layout, ``key=value`` overrides."""
    parser = argparse.ArgumentParser(
        epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="path to a LazyConfig .py/.yaml")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from train.output_dir/last_checkpoint (iteration, optimizer, scheduler, scaler, RNG, "
        "data position); without it, train.init_checkpoint only provides initial weights",
    )
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="only evaluate train.init_checkpoint (or, with --resume, the newest good checkpoint in "
        "train.output_dir); refuses to run without weights that match the model",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the earlier run in train.output_dir (its config, metrics, checkpoints and evaluation "
        "are deleted first; with --eval-only: its inference/sem_seg_evaluation.json); without it such a "
        "folder is refused",
    )
    parser.add_argument(
        "--no-calibration",
        action="store_true",
        help="--eval-only: score the plain argmax, leaving out the class offsets a checkpoint carries",
    )
    parser.add_argument(
        "--skip-data-check",
        action="store_true",
        help="do not decode the test split's files before training (by default every image and label is "
        "opened and checked once; unchanged files are remembered in $SOFTLABELSEG_CACHE)",
    )
    parser.add_argument(
        "--allow-factor-change",
        action="store_true",
        help="resume or evaluate a checkpoint at another training-resolution factor than it was trained at "
        "(refused without it; the log says what changed)",
    )
    parser.add_argument(
        "--allow-label-mode-change",
        action="store_true",
        help="--resume a run with another dataloader.train.mapper.label_mode than it was trained with "
        "(refused without it; the log says what changed)",
    )
    parser.add_argument(
        "--engine",
        choices=("native", "detectron2"),
        default="native",
        help="training loop: the project's own (default) or detectron2's trainer, hooks, checkpointer and "
        "writers (needs detectron2 installed)",
    )
    parser.add_argument(
        "--num-gpus", type=int, default=1, help="processes per machine (CPU workers without CUDA)"
    )
    parser.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=int, default=0, help="rank of this machine (0 .. num_machines-1)"
    )
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="init URL of the process group, e.g. tcp://<machine 0>:<port>; 'auto' picks a free local port",
    )
    parser.add_argument(
        "opts",
        nargs="*",
        default=[],
        help="config overrides as key=value, e.g. train.max_iter=1000 dataloader.train.total_batch_size=8 "
        "(flags may come before or after them: parse with parse_intermixed_args)",
    )
    return parser


class _RankFilter(logging.Filter):
    def filter(self, record):
        record.rank = comm.get_rank()
        return True


def setup_logger(output_dir: str | None = None, rank: int = 0, name: str | None = None) -> logging.Logger:
    """Console (INFO on rank 0, WARNING elsewhere) and ``<output_dir>/log.txt`` (``log.txt.rank<N>``) handlers
    on the root logger; calling it again replaces the handlers it added before."""
    root = logging.getLogger(name)
    for h in list(root.handlers):
        if getattr(h, _HANDLER_TAG, False):
            root.removeHandler(h)
            h.close()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("[%(asctime)s %(name)s]: %(message)s", datefmt="%m/%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    console.setFormatter(fmt)
    handlers = [console]
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "log.txt" if rank == 0 else f"log.txt.rank{rank}")
        fh = logging.FileHandler(path)
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(fmt)
        handlers.append(fh)
    for h in handlers:
        setattr(h, _HANDLER_TAG, True)
        h.addFilter(_RankFilter())
        root.addHandler(h)
    return root


def seed_all_rng(seed: int | None = None) -> int:
    """Seeds python, numpy and torch; a negative or None seed draws one from the OS. Returns the seed."""
    if seed is None or seed < 0:
        seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (legacy global RNG used by libraries)
    torch.manual_seed(seed)
    return seed


def resolve_device(name: str | None) -> torch.device:
    """``"auto"`` -> cuda if available else cpu; ``"cuda"`` -> this rank's GPU (clear error without CUDA)."""
    name = name or "auto"
    check_choice("device", name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigValueError(
                f"train.device={name!r} but CUDA is not available; use train.device=cpu or auto"
            )
        if name == "cuda":
            return torch.device("cuda", comm.get_local_rank())
    return torch.device(name)


def seed_from_config(cfg) -> int:
    """Seeds python/numpy/torch with ``train.seed`` + rank (a negative seed: drawn at random; a missing one:
    the schema's default); returns the seed used."""
    seed = train_value(cfg, "seed")
    return seed_all_rng(None if seed is None or seed < 0 else seed + comm.get_rank())


def set_cpu_threads(cfg, device) -> int | None:
    """On the CPU, the torch intra-op threads: ``train.cpu_threads``, else (without ``OMP_NUM_THREADS``)
    the usable cores minus the training loader's workers, one per process rank; returns the number set
    (None: left as it was)."""
    from omegaconf import OmegaConf

    if device.type != "cpu":
        return None
    threads = train_value(cfg, "cpu_threads")
    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return None
        workers = OmegaConf.select(cfg, "dataloader.train.num_workers", default=0) or 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // max(1, comm.get_local_size()) - int(workers))
    torch.set_num_threads(int(threads))
    logger.info(f"torch uses {threads} intra-op thread(s) on the CPU (train.cpu_threads)")
    return int(threads)


def default_setup(cfg, args, save_config: bool = True, seed: int | None = None) -> None:
    """Creates ``train.output_dir``, sets up logging, logs the run, saves ``config.yaml``, seeds RNGs.

    The seed is ``train.seed`` (+ rank); a negative seed is drawn at random and logged. ``seed``: the RNGs
    were seeded already (:func:`seed_from_config`, e.g. to build the model before anything is written)
    with this seed, which is only logged. A training run (not ``--eval-only``) removes the temporary files
    an interrupted checkpoint write left in the folder. ``save_config=False`` defers the config to
    :func:`save_config` (``--eval-only`` writes it next to its results, never over the training run's
    ``config.yaml``).
    """
    output_dir = cfg.train.output_dir
    rank = comm.get_rank()
    if comm.is_main_process() and output_dir:
        os.makedirs(output_dir, exist_ok=True)
    comm.synchronize()
    setup_logger(output_dir, rank)
    logger.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    logger.info(
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, CUDA: {torch.cuda.is_available()}"
    )
    logger.info(f"Command line arguments: {args}")
    if comm.is_main_process() and output_dir and not getattr(args, "eval_only", False):
        remove_stale_temporaries(output_dir)
    if save_config and output_dir:
        save_config_file(cfg, os.path.join(output_dir, "config.yaml"))
    if seed is None:
        seed = seed_from_config(cfg)
    logger.info(f"Seeded python/numpy/torch RNGs with {seed}")
    if train_value(cfg, "cudnn_benchmark"):
        torch.backends.cudnn.benchmark = True


def save_config_file(cfg, path: str) -> None:
    """Writes the config to ``path`` with its interpolations (main rank only)."""
    from softlabelseg.config import LazyConfig

    if comm.is_main_process():
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        LazyConfig.save(cfg, path)
        logger.info(f"Full config saved to {path}")


def create_ddp_model(model: torch.nn.Module, *, fp16_compression: bool = False, **kwargs) -> torch.nn.Module:
    """Wraps ``model`` in DistributedDataParallel when the world has several processes."""
    if comm.get_world_size() == 1:
        return model
    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        kwargs.setdefault("device_ids", [comm.get_local_rank()])
    ddp = torch.nn.parallel.DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp


def default_writers(output_dir: str, max_iter: int, tensorboard: bool = True) -> list:
    """Console printer with ETA, ``metrics.json`` (JSON lines) and TensorBoard in ``output_dir``."""
    from .events import CommonMetricPrinter, JSONWriter, TensorboardXWriter

    os.makedirs(output_dir, exist_ok=True)
    writers = [CommonMetricPrinter(max_iter), JSONWriter(os.path.join(output_dir, "metrics.json"))]
    if tensorboard:
        writers.append(TensorboardXWriter(output_dir))
    return writers
