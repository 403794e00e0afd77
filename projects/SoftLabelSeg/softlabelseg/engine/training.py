"""The one training path, engine-neutral: ``do_train`` and ``do_test`` as in detectron2's lazyconfig tool.

An engine supplies only what differs between engines (:class:`Engine`): the loop that drives the project's
:class:`TrainStep`, the checkpointer, the hooks and writers, and the inference loop. Everything else (the
step, the keys and their defaults, the hook order, resume, the evaluation folder) is written here once.
:data:`NATIVE` is the project's own engine; ``softlabelseg.d2_bridge.ENGINE`` is detectron2's.
:func:`calibrate_run` fits a finished run's class offsets (``calibration``) and scores it again.
"""

from __future__ import annotations

import logging
import os

from softlabelseg.config import instantiate

from ..checkpoint_io import model_normalization
from ..utils import comm
from . import hooks, preflight, start_checks
from .calibration import CalibrationHook, calibrate
from .calibration import logger as calibration_logger
from .checkpoint import Checkpointer, CheckpointError, unwrap_model
from .defaults import create_ddp_model, default_writers
from .events import trim_metrics
from .solver import LRMultiplier
from .start_checks import check_factors, run_meta
from .train_config import train_value
from .train_loop import SimpleTrainer, TrainStep

__all__ = ["NATIVE", "Engine", "build_train_step", "calibrate_run", "check_factors", "do_test", "do_train",
           "evaluator_config", "load_eval_weights", "run_meta"]

logger = logging.getLogger("softlabelseg.engine")


class Engine:
    """The project's own engine; another engine subclasses it and replaces what differs."""

    name = "native"

    def trainer(self, step: TrainStep):
        """The loop that runs ``step`` once per iteration (with ``register_hooks``, ``train``, ``iter``)."""
        return SimpleTrainer.from_step(step)

    def checkpointer(self, model, output_dir: str, trainer):
        """Saves weights + trainer state; ``resume_or_load``, ``resumed_from``, ``get_checkpoint_file``."""
        return Checkpointer(model, output_dir, trainer=trainer)

    # the hooks, in the order do_train registers them
    def timer(self):
        return hooks.IterationTimer()

    def lr_scheduler(self, optimizer, multiplier, max_iter: int):
        return hooks.LRScheduler(optimizer, LRMultiplier(optimizer, multiplier, max_iter))

    def project_hook(self, hook):
        """One of the project's own hooks (``HookBase``) as this engine's loop registers it."""
        return hook

    def memory(self, device):
        return hooks.MemoryStats()

    def skipped_samples(self, period: int):
        return hooks.SkippedSamples(period)

    def periodic_checkpointer(self, checkpointer, period: int, max_iter: int, max_to_keep):
        return hooks.PeriodicCheckpointer(checkpointer, period, max_iter, max_to_keep)

    def eval_hook(self, period: int, function):
        return hooks.EvalHook(period, function)

    def writer(self, output_dir: str, max_iter: int, period: int):
        return hooks.PeriodicWriter(default_writers(output_dir, max_iter), period=period)

    def inference(self, model, loader, evaluator) -> dict:
        from softlabelseg.evaluation import inference_on_dataset

        return inference_on_dataset(model, loader, evaluator)


NATIVE = Engine()


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


def do_test(cfg, model, engine: Engine = NATIVE) -> dict:
    """Evaluates ``model`` on ``dataloader.test`` with ``dataloader.evaluator``, through the test-time
    wrappers of ``train.test``; the results dict ({} when the config has no evaluator)."""
    ev_cfg = evaluator_config(cfg)
    if ev_cfg is None:
        return {}
    from softlabelseg.evaluation import build_test_model

    test_model = build_test_model(model, **train_value(cfg, "test"))
    return engine.inference(test_model, instantiate(cfg.dataloader.test), instantiate(ev_cfg))


def build_train_step(cfg, model, device) -> TrainStep:
    """Optimizer, train loader and DDP wrapper from ``cfg``, in one :class:`TrainStep` (gradient
    accumulation, clipping and autocast included: ``train.amp`` needs CUDA, else fp32 with a warning)."""
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **train_value(cfg, "ddp"))
    precision = None
    if train_value(cfg, "amp.enabled"):
        if device.type == "cuda":
            precision = train_value(cfg, "amp.precision")
        else:
            logger.warning("train.amp.enabled=True needs CUDA; training in fp32 on %s", device)
    return TrainStep(model, train_loader, optimizer, grad_accum_steps=train_value(cfg, "grad_accum_steps"),
                     clip_grad_norm=train_value(cfg, "clip_grad_norm"), precision=precision,
                     max_loss=train_value(cfg, "divergence.max_loss"),
                     max_loss_ratio=train_value(cfg, "divergence.max_loss_ratio"),
                     chance_loss=_chance_loss(cfg),
                     max_start_loss_ratio=train_value(cfg, "divergence.max_start_loss_ratio"))


def _chance_loss(cfg) -> float | None:
    """ln(C), the cross-entropy of a uniform guess over the config's C classes (None when it names none)."""
    import math

    from omegaconf import OmegaConf

    for key in ("model.num_classes", "dataloader.train.mapper.num_classes"):
        count = OmegaConf.select(cfg, key, default=None)
        if isinstance(count, int) and not isinstance(count, bool) and count > 1:
            return math.log(count)
    return None


def _finish_run(cfg, model, engine: Engine, checkpointer, weights: str, max_iter: int) -> None:
    """A run that stopped after its last step but before its class offsets (``train.calibration``) or its
    evaluation were written: fit and save them, evaluate."""
    if train_value(cfg, "calibration.enabled") and getattr(model, "calibration", "none") is None:
        logger.info(f"{weights} carries no class offsets although train.calibration is on: fitting them now")
        calibrate(cfg, model)
        checkpointer.save("model_final", iteration=max_iter)
        weights = checkpointer.get_checkpoint_file() or weights
    folder = preflight.eval_dir(cfg)
    if evaluator_config(cfg) is None or not folder:
        return
    result = os.path.join(folder, preflight.EVAL_JSON)
    if os.path.isfile(result) and os.path.getmtime(result) >= os.path.getmtime(weights):
        return
    logger.info(f"{result} is missing or older than {weights}: the run stopped before its final evaluation; "
                "evaluating now")
    do_test(cfg, model, engine)


def do_train(cfg, model, device, resume: bool = False, engine: Engine = NATIVE,
             allow_factor_change: bool = False, allow_label_mode_change: bool = False,
             resume_from=None):
    """Trains ``model`` with ``engine``'s loop, hooks and checkpointer: LR schedule, memory and
    skipped-sample counts, periodic checkpoints, periodic and final evaluation, metric writers.

    With ``resume`` it continues from the newest good checkpoint of ``train.output_dir`` (refusing one of
    another resolution factor unless ``allow_factor_change``, of another label mode unless
    ``allow_label_mode_change``, of another class count always), drops the metrics lines it will write again,
    and evaluates a finished run whose evaluation was never written. ``resume_from``: that checkpoint as the
    start checks read it (a ``Resumable`` from ``start_checks.check_resume``), so it is not read again.
    """
    max_iter = int(cfg.train.max_iter)
    out = cfg.train.output_dir
    log_period = train_value(cfg, "log_period")
    trainer = engine.trainer(build_train_step(cfg, model, device))
    checkpointer = engine.checkpointer(model, out, trainer)
    checkpointer.meta = {**run_meta(cfg), **start_checks.run_labels(cfg),
                         **model_normalization(unwrap_model(model))}
    checkpointer.max_abs_weight = train_value(cfg, "divergence.max_abs_weight")
    trainer.register_hooks([
        engine.timer(),
        engine.lr_scheduler(trainer.optimizer, instantiate(cfg.lr_multiplier), max_iter),
        engine.memory(device),
        engine.skipped_samples(log_period),
        engine.periodic_checkpointer(checkpointer, train_value(cfg, "checkpointer.period"), max_iter,
                                     train_value(cfg, "checkpointer.max_to_keep")),
        # before the final evaluation, after model_final: the offsets are fitted, saved, then scored
        engine.project_hook(CalibrationHook(cfg, model, checkpointer))
        if train_value(cfg, "calibration.enabled") else None,
        engine.eval_hook(train_value(cfg, "eval_period"), lambda: do_test(cfg, model, engine)),
        engine.writer(out, max_iter, log_period) if comm.is_main_process() else None,
    ])
    rest = checkpointer.resume_or_load(train_value(cfg, "init_checkpoint"), resume=resume, found=resume_from)
    resumed = checkpointer.resumed_from
    if resumed is not None:
        check_factors(cfg, (rest or {}).get("meta") or {}, resumed, allow_factor_change)
        start_checks.check_labels(cfg, (rest or {}).get("meta") or {}, resumed, allow_label_mode_change)
    # The trainer state holds the iteration that had just finished (as detectron2's does, so either
    # engine resumes the other's checkpoints); init_checkpoint gives weights only.
    start_iter = trainer.iter + 1 if resumed is not None else 0
    if comm.is_main_process() and resumed is not None:
        dropped = trim_metrics(os.path.join(out, "metrics.json"), start_iter)
        if dropped:
            logger.info(f"metrics.json: dropped {dropped} line(s) after iteration {start_iter - 1}, which "
                        "this run writes again")
    if start_iter >= max_iter:
        logger.info(f"Checkpoint is at iteration {start_iter} >= train.max_iter={max_iter}: nothing to train")
        if resumed is not None:
            _finish_run(cfg, model, engine, checkpointer, resumed, max_iter)
        return trainer
    try:
        trainer.train(start_iter, max_iter)
    except FloatingPointError as e:
        checkpointer.set_aside(trainer.iter)
        last = checkpointer.get_checkpoint_file()
        logger.error(f"{e}\nLast good checkpoint: {last or 'none written yet'}")
        raise
    return trainer


def load_eval_weights(cfg, model, resume: bool, allow_factor_change: bool = False,
                      offsets: bool = True) -> str:
    """Loads the weights ``--eval-only`` scores, strictly; returns their path.

    With ``resume`` and checkpoints in ``train.output_dir``: the newest good one; else
    ``train.init_checkpoint``. Raises :class:`CheckpointError` when there is none, or when it is unreadable,
    non-finite, diverged, does not fit the model (a mismatched head would otherwise score random weights) or
    was trained at another resolution factor (unless ``allow_factor_change``). Class offsets the checkpoint
    carries are applied (and said so), unless ``offsets`` is False.
    """
    checkpointer = Checkpointer(model, cfg.train.output_dir)
    checkpointer.max_abs_weight = train_value(cfg, "divergence.max_abs_weight")
    if resume and checkpointer.list_checkpoints():
        rest = checkpointer.resume_or_load(None, resume=True)
        path = checkpointer.resumed_from
    else:
        path = train_value(cfg, "init_checkpoint")
        if not path:
            where = f" (none in train.output_dir={cfg.train.output_dir})" if resume else ""
            raise CheckpointError(
                f"--eval-only needs trained weights{where}: pass train.init_checkpoint=<model.pth>, or "
                "--resume to use the newest checkpoint of train.output_dir. Refusing to score random weights."
            )
        rest = checkpointer.load(path, checkpointables=[], strict=True)
    check_factors(cfg, (rest or {}).get("meta") or {}, path, allow_factor_change)
    calibration = getattr(model, "calibration", None)
    if calibration is not None:
        model.apply_offsets = offsets
        logger.info(f"{path} carries class offsets ({calibration.get('method')} on "
                    f"{calibration.get('fit_images')} training images): "
                    + ("applied; the evaluation scores the argmax without them too (--no-calibration "
                       "leaves them out)" if offsets else "left out (--no-calibration)"))
    return path


def calibrate_run(folder: str, fit_images: int | None = None, iters: int | None = None) -> dict:
    """Calibrates a finished run in ``folder``: fits the offsets of its newest good checkpoint (with its own
    ``config.yaml``), writes them into that checkpoint (atomically; its other entries unchanged) and scores
    the run's test split again, the evaluation JSON then holding the scores with and without the offsets.
    Returns the evaluation results. The run folder is locked meanwhile."""
    from omegaconf import OmegaConf

    from softlabelseg.config import LazyConfig

    from .checkpoint import atomic_save, read_checkpoint
    from .run_lock import RunLock

    config = os.path.join(folder, "config.yaml")
    if not os.path.isfile(config):
        raise FileNotFoundError(f"{config} does not exist: --run takes a training run's folder")
    cfg = LazyConfig.load(config)
    for key, value in (("fit_images", fit_images), ("iters", iters)):
        if value is not None:
            OmegaConf.update(cfg, f"train.calibration.{key}", value, force_add=True)
    with RunLock(folder):
        model = instantiate(cfg.model)
        checkpointer = Checkpointer(model, folder)
        path, _ = checkpointer.newest_good()
        if path is None:
            raise CheckpointError(f"{folder} holds no checkpoint to calibrate")
        checkpointer.load(path, checkpointables=[], strict=True)
        calibrate(cfg, model)
        data = read_checkpoint(path)
        data["calibration"] = model.calibration_state()
        atomic_save(data, path)
        calibration_logger.info(f"wrote the class offsets into {path}")
        return do_test(cfg, model)
