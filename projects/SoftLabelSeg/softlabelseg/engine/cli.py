"""Training / evaluation entry point behind ``tools/lazyconfig_train_net.py`` and ``softlabelseg-train``.

``main(argv)`` parses detectron2's arguments and launches ``run`` on one process per device (see
``launch``); ``run`` checks everything it can, then trains or evaluates with ``do_train`` / ``do_test``
(``engine.training``) on the engine ``--engine`` names.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os

import torch

from softlabelseg.config import LazyConfig, instantiate

from ..modeling.pretrained import skip_initial_weights
from ..utils import comm
from . import preflight, start_checks
from .checkpoint import CheckpointError
from .defaults import (
    default_argument_parser,
    default_setup,
    resolve_device,
    save_config_file,
    seed_from_config,
    set_cpu_threads,
    setup_logger,
)
from .launch import launch
from .run_lock import RunLock
from .train_config import ConfigValueError, train_value
from .training import NATIVE, do_test, do_train, evaluator_config, load_eval_weights

__all__ = [
    "do_test", "do_train", "evaluator_config", "load_eval_weights", "run", "main",
    "console_main",
]

logger = logging.getLogger("softlabelseg.engine")


# Engines other than the native one, by module: loaded only when asked for (detectron2 is optional, and the
# engine package never imports the bridge, which builds on it).
ENGINE_MODULES = {"detectron2": "softlabelseg.d2_bridge"}


class EngineMissingError(ImportError):
    """``--engine`` names an engine whose package is not installed."""


def _engine(name: str):
    """The engine ``--engine`` names: :data:`NATIVE`, or the ``ENGINE`` of its module."""
    if name not in ENGINE_MODULES:
        return NATIVE
    try:
        return importlib.import_module(ENGINE_MODULES[name]).ENGINE
    except ImportError as e:
        raise EngineMissingError(
            f"--engine detectron2 needs detectron2 ({e}). Install it with: pip install --no-build-isolation "
            "'git+https://github.com/facebookresearch/detectron2@02b5c4e295e990042a714712c21dc79b731e8833' "
            "(docs/detectron2.md), or use the default --engine native."
        ) from e


def load_config(path: str):
    """The LazyConfig at ``path``; a file that cannot be loaded (a folder, not text, broken YAML, a recipe
    that raises) becomes a :class:`ConfigValueError` naming it, with the first line of the cause."""
    if os.path.isdir(path):
        raise ConfigValueError(f"--config-file {path} is a folder: pass a recipe (.py) or a run's "
                               "config.yaml")
    try:
        return LazyConfig.load(path)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - a recipe is the user's Python: whatever it raises is named
        detail = (str(e).strip().splitlines() or [""])[0][:300]
        where = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        raise ConfigValueError(
            f"--config-file {path} cannot be loaded{where}: {type(e).__name__}: {detail}. Pass a LazyConfig "
            "recipe (.py) or a run's config.yaml.") from None


def run(args):
    """Per-process main: load + override the config, check it, set up, then train or evaluate with the
    engine ``args.engine`` names ("native", the default, or "detectron2").

    Everything checkable is checked before anything is written: config values, both datasets, the output
    folder (an earlier run is refused without ``--resume``/``--overwrite``) and, for ``--eval-only``, the
    weights.
    """
    setup_logger(None, comm.get_rank())  # the console, until the run's folder is this process's
    cfg = LazyConfig.apply_overrides(load_config(args.config_file), args.opts)
    eval_only = bool(args.eval_only)
    allow_factor_change = bool(getattr(args, "allow_factor_change", False))
    allow_label_mode_change = bool(getattr(args, "allow_label_mode_change", False))
    engine = _engine(getattr(args, "engine", "native"))
    preflight.check_train_config(cfg, eval_only)
    start_checks.check_values(cfg, eval_only)
    preflight.check_datasets(cfg, eval_only)
    if not getattr(args, "skip_data_check", False):
        preflight.check_test_files(cfg)
    earlier = preflight.check_output_dir(
        cfg, resume=args.resume, overwrite=getattr(args, "overwrite", False), eval_only=eval_only
    )
    # The model is built before anything is written, so a config that cannot build leaves no trace.
    seed = seed_from_config(cfg)
    device = resolve_device(train_value(cfg, "device"))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    set_cpu_threads(cfg, device)
    # --eval-only scores trained weights: the backbone's ImageNet weights are not read (nor need installing)
    with skip_initial_weights() if eval_only else contextlib.nullcontext():
        model = instantiate(cfg.model)
    resume_from = None  # the checkpoint --resume continues from, read once here
    if not eval_only:
        start_checks.check_training_objects(cfg, model)
        if args.resume:
            resume_from = start_checks.check_resume(cfg, allow_factor_change, allow_label_mode_change,
                                                    model=model)
    out = cfg.train.output_dir
    lock = RunLock(out).acquire() if out and comm.is_main_process() else None
    try:
        return _run_locked(cfg, args, engine, model, device, seed, earlier, allow_factor_change, resume_from)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(cfg, args, engine, model, device, seed, earlier, allow_factor_change, resume_from=None):
    """``run`` once the run folder is this process's: clean, set up, then evaluate or train."""
    eval_only, out = bool(args.eval_only), cfg.train.output_dir
    preflight.remove_earlier_run(earlier, out)
    default_setup(cfg, args, save_config=not eval_only, seed=seed)
    outside = preflight.eval_dir_outside_run(cfg)
    if outside:
        logger.warning(
            f"Evaluation results go to {outside} (dataloader.evaluator.output_dir), outside "
            f"train.output_dir={cfg.train.output_dir}"
        )
    model = model.to(device)
    logger.info(
        f"Model: {type(model).__name__} with {sum(p.numel() for p in model.parameters()):,} parameters"
    )
    if eval_only:
        weights = load_eval_weights(cfg, model, args.resume, allow_factor_change,
                                    offsets=not getattr(args, "no_calibration", False))
        logger.info(f"Evaluating {weights}")
        if preflight.eval_dir(cfg):
            save_config_file(cfg, os.path.join(preflight.eval_dir(cfg), "config.yaml"))
        return do_test(cfg, model, engine)
    do_train(cfg, model, device, resume=args.resume, engine=engine, allow_factor_change=allow_factor_change,
             allow_label_mode_change=bool(getattr(args, "allow_label_mode_change", False)),
             resume_from=resume_from)
    _say_where_results_went(cfg)
    return None


def _say_where_results_went(cfg) -> None:
    """The last lines of a run: where its weights, evaluation and overlays are, and how to look further."""
    out = cfg.train.output_dir
    if not out or not comm.is_main_process():
        return
    lines = [f"Run folder: {out}"]
    final = os.path.join(out, "model_final.pth")
    if os.path.isfile(final):
        lines.append(f"  weights:    {final}")
    folder = preflight.eval_dir(cfg)
    result = os.path.join(folder, preflight.EVAL_JSON) if folder else None
    if result and os.path.isfile(result):
        import json

        with open(result) as f:
            miou = json.load(f)["metrics"]["mIoU"]
        lines.append(f"  evaluation: {result} (mIoU {miou:.2f} at full resolution)")
        overlays = os.path.join(folder, "overlays")
        if os.path.isdir(overlays):
            lines.append(f"  overlays:   {overlays}/ ({len(os.listdir(overlays))} images)")
    if os.path.isfile(final):
        config = os.path.join(out, "config.yaml")
        lines.append(f"  on your own images: python tools/demo.py --config-file {config} "
                     f"--input <image or folder> --output <folder> train.init_checkpoint={final}")
    logger.info("\n".join(lines))


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
    """:func:`main` for the command line: a bad config value, config file, dataset, sample, checkpoint or
    output folder, a model that cannot be built from the config, a missing optional engine, a folder that
    cannot be written (read-only, disk full, a name too long) and a diverged run end with
    ``error: <what and what to do>`` on stderr and exit code 2, not a traceback."""
    import sys

    from softlabelseg.config import InstantiationError
    from softlabelseg.data import BadSampleError, DatasetNotFoundError

    try:
        main(argv)
    except (ConfigValueError, preflight.OutputDirError, CheckpointError, DatasetNotFoundError, BadSampleError,
            OSError, KeyError, FloatingPointError, InstantiationError, EngineMissingError) as e:  # fmt: skip
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0
