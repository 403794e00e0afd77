"""softlabelseg.engine: trainer loop, hooks, checkpoints, schedules, launch and the command-line entry.

- ``SimpleTrainer`` (the loop with a ``TrainStep``, whose precision decides autocast) with ``HookBase``
  hooks (``hooks``), ``EventStorage`` + writers.
- ``Checkpointer``: atomic checkpoints, exact resume (iteration, optimizer, scheduler, scaler, RNG, data).
- ``get_default_optimizer_params``, ``WarmupParamScheduler``, ``LRMultiplier`` (schedules themselves are
  fvcore's param schedulers).
- ``launch`` (spawned DDP, torchrun), ``default_argument_parser``, ``default_setup``.
- ``cli.main``: what ``tools/lazyconfig_train_net.py`` runs.
"""

from ..utils import comm
from . import hooks
from .checkpoint import Checkpointer, atomic_save, capture_rng_state, restore_rng_state, unwrap_model
from .defaults import (
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    resolve_device,
    seed_all_rng,
    setup_logger,
)
from .events import CommonMetricPrinter, EventStorage, JSONWriter, TensorboardXWriter, get_event_storage
from .launch import launch
from .solver import (
    LRFactorByPrefix,
    LRMultiplier,
    WarmupParamScheduler,
    get_default_optimizer_params,
)
from .train_loop import HookBase, SimpleTrainer, TrainerBase, TrainStep

__all__ = [
    "comm",
    "hooks",
    "Checkpointer",
    "atomic_save",
    "capture_rng_state",
    "restore_rng_state",
    "unwrap_model",
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "default_writers",
    "resolve_device",
    "seed_all_rng",
    "setup_logger",
    "CommonMetricPrinter",
    "EventStorage",
    "JSONWriter",
    "TensorboardXWriter",
    "get_event_storage",
    "launch",
    "LRFactorByPrefix",
    "LRMultiplier",
    "WarmupParamScheduler",
    "get_default_optimizer_params",
    "HookBase",
    "SimpleTrainer",
    "TrainerBase",
    "TrainStep",
]
