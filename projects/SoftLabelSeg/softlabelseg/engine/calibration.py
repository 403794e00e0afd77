"""Calibrated decisions as a step of a run: fit per-class logit offsets on training images (prior matching,
``evaluation.calibration``) and give them to the model, which carries them in its checkpoints and exports.

The rule matches the predicted class shares to the label shares of training images; validation and test
images are never used. It is fitted after training (``train.calibration.enabled``, a hook that runs before
the final evaluation) or on a finished run folder (``training.calibrate_run``, behind
``tools/calibrate_prior.py --run``).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from omegaconf import OmegaConf

from softlabelseg.config import instantiate

from ..utils import comm
from .train_config import ConfigValueError, train_value
from .train_loop import HookBase

__all__ = ["CalibrationHook", "MIN_FIT_IMAGES", "WARN_FIT_IMAGES", "calibrate", "fit_class_offsets",
           "fit_records"]

logger = logging.getLogger(__name__)
MIN_FIT_IMAGES = 4  # fewer cannot estimate class shares at all: refused
WARN_FIT_IMAGES = 20  # fewer give noisy shares: warned


def fit_records(cfg, n: int) -> list[dict]:
    """``n`` training records, evenly spaced over ``dataloader.train.dataset`` (every sequence of a video
    dataset, not its first one), in a fixed order."""
    from softlabelseg.data import get_dataset_dicts

    node = cfg.dataloader.train.dataset
    named = isinstance(node, str) or OmegaConf.is_list(node)
    records = get_dataset_dicts(node if named else instantiate(node))
    if len(records) <= n:
        return list(records)
    return [records[int(i)] for i in np.linspace(0, len(records) - 1, n).round().astype(int)]


def fit_class_offsets(cfg, model, fit_images: int = 48, iters: int = 12) -> dict:
    """Fits the offsets of ``model`` (its plain logits) on ``fit_images`` training images seen as at test
    time (the test mapper: image at the test factor, label at full resolution). Returns the calibration
    state ``{"offsets": (C,), "method", "fit_dataset", "fit_images", "iters", "history", "seconds"}``
    (``history``: the mean |log share ratio| of each step).

    Deterministic (no random draws). Classes absent from the fit images keep offset 0; offsets are bounded
    (|b| <= 5), so a class the model never predicts cannot run away. Raises :class:`ConfigValueError` for
    fewer than ``MIN_FIT_IMAGES`` images and warns below ``WARN_FIT_IMAGES``.
    """
    from softlabelseg.data import build_test_loader
    from softlabelseg.evaluation.calibration import cache_predictions, fit_prior_bias

    start = time.perf_counter()
    records = fit_records(cfg, fit_images)
    if len(records) < MIN_FIT_IMAGES:
        raise ConfigValueError(
            f"train.calibration: {len(records)} training image(s) cannot estimate class shares; fit on at "
            f"least {MIN_FIT_IMAGES} (train.calibration.fit_images), or leave calibration off")
    if len(records) < WARN_FIT_IMAGES:
        logger.warning(f"class offsets fitted on only {len(records)} training images: the shares are noisy; "
                       f"{WARN_FIT_IMAGES} or more are advised")
    loader = build_test_loader(records, instantiate(cfg.dataloader.test.mapper), num_workers=0)
    was = model.apply_offsets
    model.apply_offsets = False  # fit on the plain logits, also when refitting a calibrated model
    try:
        cache = cache_predictions(model, loader)
    finally:
        model.apply_offsets = was
    offsets, history = fit_prior_bias(cache, iters=iters)
    dataset = cfg.dataloader.train.dataset
    return {"offsets": offsets, "method": "prior matching", "iters": int(iters),
            "fit_dataset": dataset if isinstance(dataset, str) else "inline records",
            "fit_images": len(cache.logits), "history": [float(h) for h in history],
            "seconds": round(time.perf_counter() - start, 2)}


def calibrate(cfg, model) -> dict:
    """Fits (main rank) and sets the offsets on every rank; returns the calibration state."""
    state = None
    if comm.is_main_process():
        state = fit_class_offsets(cfg, model, train_value(cfg, "calibration.fit_images"),
                                  train_value(cfg, "calibration.iters"))
    state = comm.all_gather_object(state)[0] if comm.is_distributed() else state
    model.load_calibration_state(state)
    offsets = ", ".join(f"{float(b):+.2f}" for b in state["offsets"])
    logger.info(f"Class offsets ({state['method']} on {state['fit_images']} training images of "
                f"{state['fit_dataset']}, {state['seconds']:.1f} s): {offsets}")
    return state


class CalibrationHook(HookBase):
    """After a run's last step, before its final evaluation: fit the offsets, give them to the model and
    write ``model_final`` again with them (``train.calibration.enabled``)."""

    def __init__(self, cfg, model, checkpointer):
        self.cfg, self.model, self.checkpointer = cfg, model, checkpointer

    def after_train(self):
        if self.trainer.iter < self.trainer.max_iter:  # stopped early: nothing to calibrate
            return
        calibrate(self.cfg, self.model)
        self.checkpointer.save("model_final", iteration=self.trainer.max_iter)
