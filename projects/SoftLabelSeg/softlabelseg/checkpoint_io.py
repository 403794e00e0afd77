"""Reading trained weights for inference: one home for the engine's checkpointer, export, verify, the demo
and ``--eval-only`` (torch only; no engine import, so export and the runners stay free of the trainer).

- :func:`read_checkpoint`: a ``.pth`` through ``torch.load(weights_only=True)`` or a ``.safetensors`` file,
  as ``{"model": state_dict, ...}``.
- :func:`read_weights`: that, with the ``module.`` prefix (DistributedDataParallel) stripped and the weights
  judged (:func:`check_weights`: no NaN / inf, no parameter beyond ``max_abs_weight``).
- :func:`load_weights`: strict loading into a model, with the class offsets the checkpoint carries.
- :func:`config_factors` (the one rule for a config's resolution factors, saved in a checkpoint's
  ``meta``), :func:`saved_factors` (a checkpoint's, or its run folder's) and :func:`check_factors` (the one
  comparison).
"""

from __future__ import annotations

import logging
import math
import os
import re

import torch
from torch import nn

__all__ = ["CheckpointError", "NonFiniteWeightsError", "apply_calibration", "calibration_of", "check_factors",
           "check_weights", "config_factors", "exploded_parameters", "factor_problem", "load_weights",
           "model_normalization", "nonfinite_tensors", "read_checkpoint", "read_weights", "resolution_factor",
           "saved_factors", "state_dict_mismatch", "strip_prefix"]

logger = logging.getLogger(__name__)
DDP_PREFIX = "module."


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, not plain tensors, non-finite, or not this model's."""


class NonFiniteWeightsError(CheckpointError):
    """Weights holding NaN / inf or parameters beyond the divergence limit: every output would be
    meaningless."""


def _walk_tensors(obj, prefix: str = ""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk_tensors(v, f"{prefix}.{i}" if prefix else str(i))


def nonfinite_tensors(obj) -> list[str]:
    """Dotted names of the floating-point tensors in ``obj`` (nested dicts/lists) holding inf or NaN."""
    return [
        name
        for name, t in _walk_tensors(obj)
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())
    ]


def _names(items: list[str], shown: int = 4) -> str:
    return ", ".join(items[:shown]) + (f" (+{len(items) - shown} more)" if len(items) > shown else "")


def _all_tensors(d: dict) -> bool:
    return all(isinstance(v, torch.Tensor) for v in d.values())


def read_checkpoint(path: str) -> dict:
    """``{"model": state_dict, ...}`` from a ``.pth`` (``torch.load(weights_only=True)``) or ``.safetensors``
    file; a bare state dict is wrapped as ``{"model": ...}``. Raises :class:`CheckpointError` naming the file
    and saying what to do when it is corrupt or holds anything but plain tensors and containers, and
    FileNotFoundError when it is missing."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} is a folder; pass a file (e.g. {path}/model_final.pth)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return {"model": load_file(path)}
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path} is not a readable .safetensors file ({e})") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        text = str(e)
        if "Weights only load failed" in text and "Unsupported global" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f"e.g. {found.group(1)}" if found else "objects other than tensors and plain containers"
            raise CheckpointError(
                f"{path} was refused: it holds pickled Python objects ({what}), and unpickling them could "
                "run arbitrary code. If you trust the file, re-save it as {'model': model.state_dict()} or "
                "as .safetensors."
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt, truncated, or another format: "
            f"{type(e).__name__}). Point to a .pth written by torch.save or a .safetensors file."
        ) from None
    if isinstance(data, dict) and "model" not in data and _all_tensors(data):
        data = {"model": data}
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise CheckpointError(
            f"{path} holds no model weights (expected a state dict or {{'model': state_dict, ...}})"
        )
    if not _all_tensors(data["model"]):
        raise CheckpointError(f"{path} holds no state dict (expected a dict of tensors or "
                              "{'model': state_dict})")
    return data


def strip_prefix(state: dict) -> dict:
    """``state`` without the ``module.`` prefix DistributedDataParallel adds (only when every key has it)."""
    if state and all(k.startswith(DDP_PREFIX) for k in state):
        return {k[len(DDP_PREFIX):]: v for k, v in state.items()}
    return state


def exploded_parameters(model: nn.Module, state: dict, max_abs_weight: float | None) -> list[str]:
    """Names of ``model``'s parameters in ``state`` larger in magnitude than ``max_abs_weight``: finite but
    diverged (empty without a limit). Of the buffers, BatchNorm's ``running_var`` is judged too (an exploding
    run shows there first); the others (counters, means) are not."""
    if max_abs_weight is None:
        return []
    judged = {name for name, _ in model.named_parameters()}
    judged |= {name for name, _ in model.named_buffers() if name.endswith("running_var")}
    return [k for k, t in state.items() if k in judged and t.is_floating_point() and t.numel()
            and float(t.detach().abs().max()) > max_abs_weight]


def check_weights(data: dict, path: str, model: nn.Module | None = None,
                  max_abs_weight: float | None = None) -> None:
    """Raises :class:`NonFiniteWeightsError` when a tensor of the checkpoint ``data`` holds NaN / inf, or
    (with ``model`` and ``max_abs_weight``) a parameter exceeds ``max_abs_weight``
    (``train.divergence.max_abs_weight``)."""
    bad = nonfinite_tensors(data)
    if bad:
        raise NonFiniteWeightsError(
            f"{path} holds NaN or inf values in {len(bad)} of {sum(1 for _ in _walk_tensors(data))} tensors "
            f"({_names(bad)}): the training that saved it "
            "diverged. Use a checkpoint saved before the divergence (an earlier model_*.pth of the run), or "
            "train again with a lower learning rate.")
    big = exploded_parameters(model, data["model"], max_abs_weight) if model is not None else []
    if big:
        raise NonFiniteWeightsError(
            f"{path} holds diverged weights: {len(big)} parameter(s) exceed |{max_abs_weight:g}| "
            f"(train.divergence.max_abs_weight; {_names(big)}), so every output would be meaningless. Use a "
            "checkpoint saved before the divergence (an earlier model_*.pth of the run), or train again with "
            "a lower learning rate.")


def read_weights(path: str, model: nn.Module | None = None, max_abs_weight: float | None = None) -> dict:
    """:func:`read_checkpoint` with the ``module.`` prefix stripped and the weights judged
    (:func:`check_weights`): the one read of a checkpoint a command needs."""
    data = read_checkpoint(path)
    data["model"] = strip_prefix(data["model"])
    check_weights(data, os.fspath(path), model, max_abs_weight)
    return data


def state_dict_mismatch(model: nn.Module, state: dict, shown: int = 8) -> list[str]:
    """Lines describing how ``state`` differs from ``model.state_dict()`` (empty when it fits exactly)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    lines = []
    for what, items in (("shape mismatch(es)", shapes), ("missing key(s)", missing),
                        ("unexpected key(s)", unexpected)):  # fmt: skip
        if items:
            more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
            lines.append(f"{len(items)} {what}: " + "; ".join(items[:shown]) + more)
    return lines


def calibration_of(model: nn.Module) -> dict | None:
    """The decision rule a model carries (``{"offsets": tensor, ...}``), for a checkpoint's
    ``"calibration"`` entry; None when it has none."""
    get = getattr(model, "calibration_state", None)
    return get() if callable(get) else None


def apply_calibration(model: nn.Module, data: dict) -> None:
    """Gives ``model`` the checkpoint entry ``data["calibration"]`` (popped); a checkpoint without one leaves
    the model without offsets, so it behaves exactly as before calibration existed."""
    state = data.pop("calibration", None)
    load = getattr(model, "load_calibration_state", None)
    if callable(load):
        load(state)
    elif state:
        logger.warning("the checkpoint carries class offsets, but this model cannot apply them")


def load_weights(model: nn.Module, data: dict, path: str, config_name: str = "this config") -> dict:
    """Loads the checkpoint ``data`` (from :func:`read_weights`; its ``"model"`` and ``"calibration"`` entries
    are consumed) into ``model`` strictly, with its class offsets; returns the other entries. Raises
    :class:`CheckpointError` naming the missing, unexpected and differently shaped keys."""
    state = data.pop("model")
    problems = state_dict_mismatch(model, state)
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not match the model built by {config_name}:\n  " + "\n  ".join(problems)
            + "\n  Use the recipe and overrides the checkpoint was trained with (e.g. model.num_classes).")
    model.load_state_dict(state, strict=True)
    apply_calibration(model, data)
    _check_normalization(model, data, path, config_name)
    return data


def model_normalization(model: nn.Module) -> dict:
    """The input normalisation a model applies, as a checkpoint's ``meta`` saves it (``pixel_mean``,
    ``pixel_std``: per RGB channel in 0..255; {} for a model without them). The segmentor keeps them as
    non-persistent buffers, so the weights alone do not carry them."""
    mean, std = getattr(model, "pixel_mean", None), getattr(model, "pixel_std", None)
    if not isinstance(mean, torch.Tensor) or not isinstance(std, torch.Tensor):
        return {}
    return {"pixel_mean": [float(v) for v in mean.flatten()], "pixel_std": [float(v) for v in std.flatten()]}


def _check_normalization(model: nn.Module, data: dict, path: str, config_name: str) -> None:
    """The normalisation the checkpoint was trained with (its ``meta``; older checkpoints say nothing) is
    the one ``model`` applies: other statistics would feed the weights inputs they never saw."""
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    saved, now = {k: meta[k] for k in ("pixel_mean", "pixel_std") if k in meta}, model_normalization(model)
    for key, value in saved.items():
        if key in now and not torch.allclose(torch.tensor(value, dtype=torch.float32),
                                             torch.tensor(now[key]), atol=1e-4):
            raise CheckpointError(
                f"checkpoint {path} was trained with {key}={value}, but {config_name} builds the model with "
                f"model.{key}={now[key]}: set model.{key} to the training value (or null to take the "
                "backbone weights' own)")


# -- resolution factors: the facts a checkpoint carries about its training ----------------------------------
FACTOR_KEYS = (("train_factor", "dataloader.train.mapper.factor"),
               ("test_factor", "dataloader.test.mapper.test_factor"),
               ("resolution_factor", "dataloader.test.mapper.factor"))  # fmt: skip


def config_factors(cfg) -> dict:
    """A config's resolution factors, as a checkpoint's ``meta`` saves them: ``train_factor`` (the training
    mapper's) and ``resolution_factor`` (the evaluation image scale: the test mapper's ``test_factor``, else
    its ``factor``); a key the config does not set is left out."""
    from omegaconf import OmegaConf

    meta = {}
    for name, key in FACTOR_KEYS:
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            meta[name] = float(value)
    if "test_factor" in meta:
        meta["resolution_factor"] = meta.pop("test_factor")
    return meta


def resolution_factor(cfg) -> float:
    """The scale a config's model sees images at (1.0 when the config sets none): what export records."""
    return config_factors(cfg).get("resolution_factor", 1.0)


def saved_factors(data: dict | None, path: str) -> tuple[dict, str | None]:
    """(factors, where they come from) of a checkpoint: the ``meta`` it was saved with, else the
    ``config.yaml`` of its run folder; ``({}, None)`` when neither tells (a plain state dict)."""
    meta = (data or {}).get("meta")
    meta = {k: v for k, v in meta.items() if k in ("train_factor", "resolution_factor")} \
        if isinstance(meta, dict) else {}
    if meta:
        return meta, f"{path} (saved with it)"
    run_cfg = os.path.join(os.path.dirname(os.path.abspath(path)), "config.yaml")
    if os.path.isfile(run_cfg):
        from omegaconf import OmegaConf

        try:
            found = config_factors(OmegaConf.load(run_cfg))
        except Exception:  # noqa: BLE001 - a config of another layout: nothing to compare
            found = {}
        if found:
            return found, run_cfg
    return {}, None


def factor_problem(cfg, data: dict | None, path: str, warn=logger.warning) -> str | None:
    """How the checkpoint ``data`` (read from ``path``) and ``cfg`` disagree on the resolution factors, as
    one sentence (None when they agree). A checkpoint that tells nothing is reported through ``warn``."""
    now = config_factors(cfg)
    saved, source = saved_factors(data, path)
    if now and not set(saved) & set(now):
        factor = now.get("resolution_factor", now.get("train_factor", 1.0))
        warn(f"{path} carries no training facts (a plain state dict without a run folder's config.yaml): its "
             f"resolution factor could not be checked against the recipe's {factor:g}; make sure it was "
             "trained at that factor")
        return None
    changed = [k for k in sorted(set(saved) & set(now)) if isinstance(saved[k], (int, float))
               and not math.isclose(float(saved[k]), now[k], rel_tol=1e-6)]
    if not changed:
        return None
    key = "resolution_factor" if "resolution_factor" in changed else changed[0]
    details = "; ".join(f"{k}: checkpoint {saved[k]:g}, config {now[k]:g}" for k in changed)
    return (f"{path} was trained at another resolution factor than this config uses ({details}): the "
            f"checkpoint was trained for factor {saved[key]:g} ({source}), but the recipe and overrides give "
            f"{now[key]:g}")


def check_factors(cfg, data: dict | None, path: str, allow_flag: str | None = None, allow: bool = False,
                  warn=logger.warning) -> None:
    """Raises :class:`CheckpointError` when the checkpoint ``data`` was trained at other resolution factors
    than ``cfg`` uses (a model scored or served at another factor than it learnt gives numbers that mean
    nothing). ``allow_flag``: the command-line flag that accepts the change (named in the error); with
    ``allow`` the change is only logged."""
    problem = factor_problem(cfg, data, path, warn)
    if problem is None:
        return
    if allow:
        logger.warning(f"{allow_flag}: {problem}; going on with the config's")
        return
    saved = saved_factors(data, path)[0]
    factor = saved.get("train_factor", saved.get("resolution_factor"))
    hint = f", or pass {allow_flag} to go on at the config's factor on purpose" if allow_flag else ""
    raise CheckpointError(f"{problem}. Set dataloader.train.mapper.factor to the checkpoint's (e.g. "
                          f"dataloader.train.mapper.factor={factor:g}){hint}.")
