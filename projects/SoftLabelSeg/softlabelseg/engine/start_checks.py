"""Checks of the values a run will use, beyond the ``train.*`` schema: run before the run folder is touched,
so a failed start leaves no trace and the corrected command just works.

Each failure raises :class:`ConfigValueError` (or :class:`CheckpointError` for the initial weights) naming
the key and saying what to do.
"""

from __future__ import annotations

import copy
import logging
import math

from omegaconf import OmegaConf

from ..checkpoint_io import (
    CheckpointError,
    config_factors,
    exploded_parameters,
    nonfinite_tensors,
    read_checkpoint,
)
from ..checkpoint_io import check_factors as _check_factors
from .checkpoint import Checkpointer
from .train_config import ConfigValueError, train_value

__all__ = ["check_class_counts", "check_factors", "check_init_checkpoint", "check_labels",
           "check_loader_values", "check_optimizer", "check_resume", "check_training_objects", "check_values",
           "run_labels", "run_meta"]

logger = logging.getLogger("softlabelseg.engine")
_ABSENT = object()


def _get(cfg, key: str):
    value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _root_cause(e: BaseException) -> BaseException:
    """The innermost explicit cause of ``e`` (the mapper's own ValueError inside the instantiation error)."""
    while e.__cause__ is not None:
        e = e.__cause__
    return e


def check_class_counts(cfg) -> None:
    """``model.num_classes``, the mappers' and the evaluator's class counts and the evaluated dataset's class
    list agree (where the config sets them): a head of another size fails at the first step or scores
    classes that do not exist."""
    from softlabelseg.data import MetadataCatalog

    counts = {}
    for key in ("model.num_classes", "dataloader.train.mapper.num_classes",
                "dataloader.test.mapper.num_classes", "dataloader.evaluator.num_classes"):
        value = _get(cfg, key)
        if value is _ABSENT or value is None or value == "???":
            continue
        if not _is_int(value) or value < 1:
            raise ConfigValueError(f"{key}={value!r}: expected an integer >= 1 (the number of classes)")
        counts[key] = value
    name = _get(cfg, "dataloader.evaluator.dataset_name")
    if isinstance(name, str) and name in MetadataCatalog.list():
        classes = MetadataCatalog.get(name).get("stuff_classes")
        if classes:
            counts[f"the {len(classes)} classes of {name}"] = len(classes)
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{k}={v}" if "=" not in k and not k.startswith("the ") else k
                           for k, v in counts.items())
        first = next(iter(counts))
        expected = list(counts.values())[-1]
        raise ConfigValueError(
            f"class counts disagree: {listed}. Set {first}={expected} (and the other keys to match), or "
            "use a dataset with that many classes.")


def check_loader_values(cfg) -> None:
    """``total_batch_size`` >= 1, ``num_workers`` >= 0 (both splits), a training factor in (0, 1], and a
    training mapper that builds (label mode, filters)."""
    from softlabelseg.config import instantiate

    batch = _get(cfg, "dataloader.train.total_batch_size")
    if batch is not _ABSENT and (not _is_int(batch) or batch < 1):
        raise ConfigValueError(f"dataloader.train.total_batch_size={batch!r}: expected an integer >= 1 "
                               "(images per optimizer step over all processes), e.g. "
                               "dataloader.train.total_batch_size=8")
    for split in ("train", "test"):
        workers = _get(cfg, f"dataloader.{split}.num_workers")
        if workers is not _ABSENT and (not _is_int(workers) or workers < 0):
            raise ConfigValueError(f"dataloader.{split}.num_workers={workers!r}: expected an integer >= 0 "
                                   "(0 loads in the training process)")
    factor = _get(cfg, "dataloader.train.mapper.factor")
    if factor is not _ABSENT:
        if not _is_number(factor) or not math.isfinite(factor) or factor <= 0:
            raise ConfigValueError(f"dataloader.train.mapper.factor={factor!r}: expected a number in (0, 1], "
                                   "the training resolution relative to the dataset's (e.g. 0.125 for 1/8)")
        if factor > 1:
            raise ConfigValueError(
                f"dataloader.train.mapper.factor={factor:g} is above 1: the images and the soft labels would "
                f"be upsampled to {factor**2:g} times the full resolution's pixels (memory and time grow "
                "alike, with nothing new to learn). Train at 1 (full resolution) or below.")
    mapper = _get(cfg, "dataloader.train.mapper")
    if isinstance(mapper, dict) and "_target_" in mapper:
        try:
            instantiate(cfg.dataloader.train.mapper)
        except Exception as e:  # noqa: BLE001 - any value the mapper refuses, named with its key
            cause = _root_cause(e)
            raise ConfigValueError(f"dataloader.train.mapper: {cause}. Fix the key it names.") from None


def check_optimizer(cfg, model) -> None:
    """``optimizer.lr`` a finite number > 0, ``optimizer.weight_decay`` finite and >= 0, and the optimizer
    builds for ``model`` (on a copy of the config: nothing is kept)."""
    from softlabelseg.config import instantiate

    for key, low in (("optimizer.lr", "> 0"), ("optimizer.weight_decay", ">= 0")):
        value = _get(cfg, key)
        if value is _ABSENT:
            continue
        ok = _is_number(value) and math.isfinite(value) and (value > 0 if low == "> 0" else value >= 0)
        if not ok:
            raise ConfigValueError(f"{key}={value!r}: expected a finite number {low}")
    if _get(cfg, "optimizer") is _ABSENT:
        return
    node = copy.deepcopy(cfg.optimizer)
    node.params.model = model
    try:
        instantiate(node)
    except Exception as e:  # noqa: BLE001 - the optimizer refuses a value: name it, before any write
        raise ConfigValueError(f"optimizer cannot be built from the config: {_root_cause(e)}") from None


def check_init_checkpoint(cfg, model) -> None:
    """``train.init_checkpoint`` (when set) exists, reads as plain tensors, and holds finite weights within
    ``train.divergence.max_abs_weight``."""
    path = train_value(cfg, "init_checkpoint")
    if not path:
        return
    data = read_checkpoint(path)  # FileNotFoundError / CheckpointError name the file
    bad = nonfinite_tensors(data.get("model", {}))
    if bad:
        raise CheckpointError(
            f"train.init_checkpoint={path} holds NaN or inf in {len(bad)} tensor(s) ({', '.join(bad[:4])}): "
            "it was saved by a diverged run and cannot start one. Point train.init_checkpoint to a "
            "checkpoint saved before the divergence (an earlier model_*.pth of that run), or leave it empty.")
    limit = train_value(cfg, "divergence.max_abs_weight")
    big = exploded_parameters(model, data["model"], limit)
    if big:
        raise CheckpointError(
            f"train.init_checkpoint={path} holds diverged weights: {len(big)} parameter(s) exceed "
            f"|{limit:g}| (train.divergence.max_abs_weight; {', '.join(big[:4])}). Point it "
            "to a checkpoint saved before the divergence.")


def check_values(cfg, eval_only: bool = False) -> None:
    """The checks that need no model: class counts always, the loader values for training."""
    check_class_counts(cfg)
    if not eval_only:
        check_loader_values(cfg)


def check_training_objects(cfg, model) -> None:
    """The checks that need the built model (training only): the optimizer builds, the initial weights
    are usable."""
    check_optimizer(cfg, model)
    check_init_checkpoint(cfg, model)


def run_labels(cfg) -> dict:
    """The training label mode and class count, saved in a checkpoint's ``meta`` beside the factors, so a
    resumed run can be held to them."""
    out = {}
    mode = _get(cfg, "dataloader.train.mapper.label_mode")
    if isinstance(mode, str):
        out["label_mode"] = mode
    count = _get(cfg, "model.num_classes")
    if _is_int(count):
        out["num_classes"] = count
    return out


def check_labels(cfg, meta: dict, path: str, allow_label_mode_change: bool = False,
                 quiet: bool = False) -> None:
    """A resumed checkpoint's label mode and class count (``meta``) against the config's: another class
    count is refused (the head cannot change size within a run); another label mode is refused unless
    ``allow_label_mode_change``, which logs it (``quiet``: not here, the later call logs)."""
    now = run_labels(cfg)
    old_n, new_n = meta.get("num_classes"), now.get("num_classes")
    if _is_int(old_n) and _is_int(new_n) and old_n != new_n:
        raise CheckpointError(
            f"--resume: {path} was trained with model.num_classes={old_n}, this config says {new_n}: a run "
            f"cannot change its class count. Resume with model.num_classes={old_n}, or start a new run "
            f"(another train.output_dir) with train.init_checkpoint={path} to fine-tune a new head.")
    old, new = meta.get("label_mode"), now.get("label_mode")
    if not isinstance(old, str) or not isinstance(new, str) or old == new:
        return
    if not allow_label_mode_change:
        raise CheckpointError(
            f"--resume: {path} was trained with dataloader.train.mapper.label_mode={old}, this config says "
            f"{new}: the run would be half one, half the other, and its config.yaml would say {new}. Resume "
            f"with dataloader.train.mapper.label_mode={old}, pass --allow-label-mode-change to switch on "
            f"purpose (logged), or start a new run with train.init_checkpoint={path}.")
    if not quiet:
        logger.warning(
            f"--allow-label-mode-change: {path} was trained with label_mode={old}; going on with {new}")


def run_meta(cfg) -> dict:
    """Facts a checkpoint carries for export and verification: the training and test resolution factors
    (:func:`softlabelseg.checkpoint_io.config_factors`)."""
    return config_factors(cfg)


def check_factors(cfg, meta: dict, path: str, allow_change: bool = False) -> None:
    """The checkpoint's resolution factors (``meta``, saved by training) against the config's
    (:func:`softlabelseg.checkpoint_io.check_factors`): a mismatch raises :class:`CheckpointError` naming
    both, unless ``allow_change`` (``--allow-factor-change``), which logs what changed."""
    _check_factors(cfg, {"meta": meta}, path, "--allow-factor-change", allow_change, warn=logger.warning)


def check_resume(cfg, allow_factor_change: bool = False, allow_label_mode_change: bool = False, *,
                 model=None):
    """Before ``--resume`` writes anything (its config.yaml included): finds the checkpoint the run continues
    from (the newest good one of ``train.output_dir``, :meth:`Checkpointer.find_resumable`, judged as the
    training checkpointer judges it: with ``model``, weights beyond ``train.divergence.max_abs_weight`` are
    passed over) and checks it was trained at the config's factors, label mode and class count (or the
    change is allowed). Returns that :class:`Resumable` (None without an output folder);
    ``do_train(resume_from=...)`` resumes from it, so the file is read once."""
    from torch import nn

    folder = _get(cfg, "train.output_dir")
    if not isinstance(folder, str) or not folder:
        return None
    finder = Checkpointer(model if model is not None else nn.Identity(), folder)
    finder.max_abs_weight = train_value(cfg, "divergence.max_abs_weight")
    found = finder.find_resumable()
    meta = found.data.get("meta") if isinstance(found.data, dict) else None
    if not isinstance(meta, dict) or not meta:
        return found
    if not allow_factor_change:
        check_factors(cfg, meta, found.path)
    check_labels(cfg, meta, found.path, allow_label_mode_change, quiet=True)
    return found
