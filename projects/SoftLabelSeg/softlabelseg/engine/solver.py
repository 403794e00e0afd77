"""Optimizer parameter groups, the warmup schedule and the per-iteration LR scheduler.

A recipe's ``lr_multiplier`` is an fvcore ``ParamScheduler``: training progress ``t`` in [0, 1) -> a
factor of every group's base LR (fvcore's polynomial / cosine schedulers, wrapped in
:class:`WarmupParamScheduler`). :class:`LRMultiplier` applies it once per iteration as a torch LR
scheduler.

Kept from detectron2 on purpose, because recipes name them: the function ``get_default_optimizer_params``
with its keyword arguments (``weight_decay_norm``, ``weight_decay_bias``, ``lr_factor_func``,
``overrides``) and the config keys of the warmup (``scheduler``, ``warmup_length``, ``warmup_factor``,
``warmup_method``); detectron2's hooks accept these schedules as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from fvcore.common.param_scheduler import ParamScheduler
from torch import nn

__all__ = ["get_default_optimizer_params", "WarmupParamScheduler", "LRMultiplier"]

# Parameters of these layers get ``weight_decay_norm``.
_NORM_LAYERS = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm,
)


def get_default_optimizer_params(
    model: nn.Module,
    base_lr: float | None = None,
    weight_decay: float | None = None,
    weight_decay_norm: float | None = None,
    weight_decay_bias: float | None = None,
    lr_factor_func: Callable[[str], float] | None = None,
    overrides: dict[str, dict] | None = None,
) -> list[dict]:
    """Parameter groups for a torch optimizer: parameters with the same options share a group.

    Args:
        model: the model; frozen (``requires_grad=False``) and repeated parameters are left out.
        base_lr, weight_decay: options of every group (None: the optimizer's own defaults).
        weight_decay_norm: decay of normalisation-layer parameters (e.g. 0.0); None: ``weight_decay``.
        weight_decay_bias: decay of parameters named ``bias``; None: as the others.
        lr_factor_func: full parameter name (``backbone.stem.weight``) -> factor on ``base_lr``
            (e.g. 10.0 for a decode head); needs ``base_lr``.
        overrides: parameter name (the last part, e.g. ``pos_embed``) -> options that win over the rest.
    Returns:
        ``[{"params": [tensors], "lr": ..., "weight_decay": ...}, ...]`` in the model's parameter order.
    """
    if lr_factor_func is not None and base_lr is None:
        raise ValueError("lr_factor_func needs base_lr")
    by_name = dict(overrides or {})
    if weight_decay_bias is not None:
        by_name["bias"] = {"weight_decay": weight_decay_bias, **by_name.get("bias", {})}
    shared = {k: v for k, v in (("lr", base_lr), ("weight_decay", weight_decay)) if v is not None}

    groups: dict[tuple, dict] = {}
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            options = dict(shared)
            if weight_decay_norm is not None and isinstance(module, _NORM_LAYERS):
                options["weight_decay"] = weight_decay_norm
            if lr_factor_func is not None:
                options["lr"] = base_lr * lr_factor_func(f"{prefix}.{name}" if prefix else name)
            options.update(by_name.get(name, {}))
            key = tuple(sorted(options.items()))
            groups.setdefault(key, {"params": [], **options})["params"].append(param)
    return list(groups.values())


class LRFactorByPrefix:
    """A ``lr_factor_func`` that a config can hold: the factor of the longest matching name prefix, else 1.

    ``LRFactorByPrefix({"backbone.": 0.1})`` fine-tunes a pretrained backbone at a tenth of the head's rate;
    unlike a plain function it survives the run's ``config.yaml``.
    """

    def __init__(self, factors: dict[str, float]):
        self.factors = {str(k): float(v) for k, v in dict(factors).items()}

    def __call__(self, name: str) -> float:
        matches = [p for p in self.factors if name.startswith(p)]
        return self.factors[max(matches, key=len)] if matches else 1.0


class WarmupParamScheduler(ParamScheduler):
    """``scheduler`` with its first ``warmup_length`` of training replaced by a warmup.

    The warmup leads up to ``scheduler(warmup_length)``, where the schedule takes over: "linear" ramps to
    it from ``warmup_factor`` times it, "constant" holds ``warmup_factor`` times it. After the warmup the
    value is ``scheduler(t)`` at the same progress ``t`` (the schedule is not stretched).

    Args:
        scheduler: the main schedule (an fvcore ``ParamScheduler``).
        warmup_factor: the fraction of the schedule's value the warmup starts from.
        warmup_length: the warmup's share of training, in [0, 1).
        warmup_method: "linear" or "constant".
    """

    def __init__(self, scheduler: ParamScheduler, warmup_factor: float, warmup_length: float,
                 warmup_method: str = "linear"):
        if not 0 <= warmup_length < 1:
            raise ValueError(f"warmup_length is a share of training in [0, 1), got {warmup_length}")
        if warmup_method not in ("linear", "constant"):
            raise ValueError(f"warmup_method must be 'linear' or 'constant', got {warmup_method!r}")
        self.scheduler, self.warmup_factor, self.warmup_length = scheduler, warmup_factor, warmup_length
        self.warmup_method = warmup_method
        self._target = scheduler(warmup_length)

    def __call__(self, where: float) -> float:
        if where >= self.warmup_length:
            return self.scheduler(where)
        start = self.warmup_factor * self._target
        if self.warmup_method == "constant":
            return start
        done = where / self.warmup_length
        return self._target * done + start * (1 - done)


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """Sets every group's ``lr`` to ``initial_lr * multiplier(iteration / max_iter)``; ``step()`` once per
    iteration. The base is each group's ``initial_lr`` (the configured learning rate: a resumed run whose
    config changes ``optimizer.lr`` continues the schedule from the new base). The state is ``base_lrs`` and
    ``last_epoch`` only (the multiplier comes from the config), so checkpoints load with
    ``torch.load(weights_only=True)``."""

    def __init__(self, optimizer, multiplier: ParamScheduler, max_iter: int, last_iter: int = -1):
        if not isinstance(multiplier, ParamScheduler):
            raise TypeError(f"multiplier must be an fvcore ParamScheduler, got {type(multiplier).__name__}")
        self._multiplier, self._max_iter = multiplier, max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def get_lr(self) -> list[float]:
        # The last iteration's progress stays below 1, where fvcore schedules are defined.
        progress = min(max(self.last_epoch, 0) / self._max_iter, math.nextafter(1.0, 0.0))
        factor = self._multiplier(progress)
        return [group["initial_lr"] * factor for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.last_epoch = int(state_dict["last_epoch"])
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr
