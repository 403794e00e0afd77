"""Training / evaluation entry point behind ``tools/lazyconfig_train_net.py`` and ``softlabelseg-train``.

``do_train`` and ``do_test`` follow detectron2's lazyconfig_train_net; ``main(argv)`` parses the
arguments and launches one process per device (see ``launch``).
"""

from __future__ import annotations

import logging
import os

import torch
from omegaconf import OmegaConf

from softlabelseg.config import LazyConfig, instantiate

from ..utils import comm
from . import preflight
from .checkpoint import Checkpointer, CheckpointError
from .defaults import (
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    resolve_device,
    save_config_file,
)
from .hooks import (
    EvalHook,
    IterationTimer,
    LRScheduler,
    MemoryStats,
    PeriodicCheckpointer,
    PeriodicWriter,
    SkippedSamples,
)
from .launch import launch
from .solver import LRMultiplier
from .train_loop import AMPTrainer, SimpleTrainer

__all__ = [
    "build_trainer", "do_test", "do_train", "evaluator_config", "load_eval_weights", "run", "main",
    "console_main",
]

logger = logging.getLogger("softlabelseg.engine")


def _get(cfg, key: str, default=None):
    value = OmegaConf.select(cfg, key, default=default)
    return default if value is None else value


def evaluator_config(cfg):
    """``dataloader.evaluator``, writing to ``preflight.eval_dir`` when it names no folder; None when the
    config has no evaluator."""
    if "evaluator" not in cfg.dataloader or cfg.dataloader.evaluator is None:
        return None
    ev_cfg = cfg.dataloader.evaluator
    if "output_dir" not in ev_cfg or ev_cfg.output_dir is None:
        ev_cfg = ev_cfg.copy()
        ev_cfg.output_dir = preflight.eval_dir(cfg)
    return ev_cfg


def do_test(cfg, model):
    """Evaluates ``model`` on ``dataloader.test`` with ``dataloader.evaluator`` (results dict, {} if none)."""
    ev_cfg = evaluator_config(cfg)
    if ev_cfg is None:
        return {}
    from softlabelseg.evaluation import build_test_model, inference_on_dataset

    test_opts = OmegaConf.to_container(cfg.train.test, resolve=True) if "test" in cfg.train else {}
    test_model = build_test_model(model, **(test_opts or {}))
    return inference_on_dataset(test_model, instantiate(cfg.dataloader.test), instantiate(ev_cfg))


def build_trainer(cfg, model, device):
    """Optimizer, train loader, DDP wrapper and (AMP)SimpleTrainer from ``cfg``."""
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **OmegaConf.to_container(cfg.train.get("ddp", {}) or {}, resolve=True))
    kwargs = {
        "grad_accum_steps": _get(cfg, "train.grad_accum_steps", 1),
        "clip_grad_norm": _get(cfg, "train.clip_grad_norm", None),
    }
    if _get(cfg, "train.amp.enabled", False):
        if device.type != "cuda":
            logger.warning("train.amp.enabled=True needs CUDA; training in fp32 on %s", device)
            return SimpleTrainer(model, train_loader, optimizer, **kwargs)
        return AMPTrainer(
            model, train_loader, optimizer, precision=_get(cfg, "train.amp.precision", "bf16"), **kwargs
        )
    return SimpleTrainer(model, train_loader, optimizer, **kwargs)


def run_meta(cfg) -> dict:
    """Facts a checkpoint carries for export and verification: the training and test resolution factors."""
    meta = {}
    for name, key in (("train_factor", "dataloader.train.mapper.factor"),
                      ("test_factor", "dataloader.test.mapper.test_factor"),
                      ("resolution_factor", "dataloader.test.mapper.factor")):  # fmt: skip
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            meta[name] = float(value)
    if "test_factor" in meta:  # the evaluation image scale, as the export metadata defines it
        meta["resolution_factor"] = meta.pop("test_factor")
    return meta


def do_train(cfg, model, device, resume: bool = False):
    """Trains ``model`` with hooks (LR schedule, checkpoints, periodic evaluation, writers)."""
    max_iter = int(cfg.train.max_iter)
    trainer = build_trainer(cfg, model, device)
    checkpointer = Checkpointer(model, cfg.train.output_dir, trainer=trainer)
    checkpointer.meta = run_meta(cfg)
    scheduler = LRMultiplier(trainer.optimizer, instantiate(cfg.lr_multiplier), max_iter)
    writers = default_writers(cfg.train.output_dir, max_iter) if comm.is_main_process() else []
    trainer.register_hooks(
        [
            IterationTimer(),
            LRScheduler(trainer.optimizer, scheduler),
            MemoryStats(),
            SkippedSamples(_get(cfg, "train.log_period", 20)),
            PeriodicCheckpointer(
                checkpointer,
                _get(cfg, "train.checkpointer.period", 5000),
                max_iter,
                _get(cfg, "train.checkpointer.max_to_keep", None),
            ),
            EvalHook(_get(cfg, "train.eval_period", 0), lambda: do_test(cfg, model)),
            PeriodicWriter(writers, period=_get(cfg, "train.log_period", 20)) if writers else None,
        ]
    )
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    resuming = checkpointer.resumed_from is not None
    # The trainer state holds the iteration that had just finished (as detectron2's does, so either
    # engine resumes the other's checkpoints); init_checkpoint gives weights only.
    start_iter = trainer.iter + 1 if resuming else 0
    if start_iter >= max_iter:
        logger.info(f"Checkpoint is at iteration {start_iter} >= train.max_iter={max_iter}: nothing to train")
        return trainer
    try:
        trainer.train(start_iter, max_iter)
    except FloatingPointError as e:
        last = checkpointer.get_checkpoint_file()
        logger.error(f"{e}\nLast good checkpoint: {last or 'none written yet'}")
        raise
    return trainer


def _detectron2_engine():
    try:
        from softlabelseg import d2_bridge
    except ImportError as e:
        raise ImportError(
            f"--engine detectron2 needs detectron2 ({e}). Install it with: pip install --no-build-isolation "
            "'git+https://github.com/facebookresearch/detectron2@02b5c4e295e990042a714712c21dc79b731e8833' "
            "(README, 'Run inside detectron2'), or use the default --engine native."
        ) from e
    return d2_bridge


def load_eval_weights(cfg, model, resume: bool) -> str:
    """Loads the weights ``--eval-only`` scores, strictly; returns their path.

    With ``resume`` and checkpoints in ``train.output_dir``: the newest good one; else
    ``train.init_checkpoint``. Raises :class:`CheckpointError` when there is none, or when it is unreadable,
    non-finite or does not fit the model (a mismatched head would otherwise score random weights).
    """
    checkpointer = Checkpointer(model, cfg.train.output_dir)
    if resume and checkpointer.list_checkpoints():
        checkpointer.resume_or_load(None, resume=True)
        return checkpointer.resumed_from
    path = _get(cfg, "train.init_checkpoint", "")
    if not path:
        where = f" (none in train.output_dir={cfg.train.output_dir})" if resume else ""
        raise CheckpointError(
            f"--eval-only needs trained weights{where}: pass train.init_checkpoint=<model.pth>, or --resume "
            "to use the newest checkpoint of train.output_dir. Refusing to score random weights."
        )
    checkpointer.load(path, checkpointables=[], strict=True)
    return path


def run(args):
    """Per-process main: load + override the config, check it, set up, then train or evaluate with the
    engine ``args.engine`` names ("native", the default, or "detectron2").

    Everything checkable is checked before anything is written: config values, both datasets, the output
    folder (an earlier run is refused without ``--resume``/``--overwrite``) and, for ``--eval-only``, the
    weights.
    """
    cfg = LazyConfig.load(args.config_file)
    cfg = LazyConfig.apply_overrides(cfg, args.opts)
    eval_only = bool(args.eval_only)
    d2 = _detectron2_engine() if getattr(args, "engine", "native") == "detectron2" else None
    if d2 is not None:
        d2.check_train_keys(cfg)
    preflight.check_train_values(cfg, eval_only)
    preflight.check_datasets(cfg, eval_only)
    preflight.prepare_output_dir(
        cfg, resume=args.resume, overwrite=getattr(args, "overwrite", False), eval_only=eval_only
    )
    default_setup(cfg, args, save_config=not eval_only)
    outside = preflight.eval_dir_outside_run(cfg)
    if outside:
        logger.warning(
            f"Evaluation results go to {outside} (dataloader.evaluator.output_dir), outside "
            f"train.output_dir={cfg.train.output_dir}"
        )
    device = resolve_device(_get(cfg, "train.device", "auto"))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    model = instantiate(cfg.model).to(device)
    logger.info(
        f"Model: {type(model).__name__} with {sum(p.numel() for p in model.parameters()):,} parameters"
    )
    if eval_only:
        weights = load_eval_weights(cfg, model, args.resume)
        logger.info(f"Evaluating {weights}")
        if preflight.eval_dir(cfg):
            save_config_file(cfg, os.path.join(preflight.eval_dir(cfg), "config.yaml"))
        return d2.do_test(cfg, model) if d2 is not None else do_test(cfg, model)
    if d2 is not None:
        d2.do_train(cfg, model, device, resume=args.resume)
        return None
    do_train(cfg, model, device, resume=args.resume)
    return None


def main(argv=None):
    """Parses ``argv`` (default: sys.argv) and launches ``run`` on every process."""
    args = default_argument_parser().parse_intermixed_args(argv)
    launch(
        run,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


def console_main(argv=None) -> int:
    """:func:`main` for the command line: a bad config value, dataset, checkpoint or output folder (and a
    diverged run) ends with ``error: <what and what to do>`` on stderr and exit code 1, not a traceback."""
    import sys

    from softlabelseg.data import BadSampleError, DatasetNotFoundError

    try:
        main(argv)
    except (preflight.ConfigValueError, preflight.OutputDirError, CheckpointError, DatasetNotFoundError,
            BadSampleError, FileNotFoundError, KeyError, FloatingPointError) as e:  # fmt: skip
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 1
    return 0
