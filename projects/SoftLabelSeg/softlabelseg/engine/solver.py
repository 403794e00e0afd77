"""Optimizer parameter groups and iteration-based LR schedules (fvcore param schedulers).

``lr_multiplier`` in a config is an fvcore ``ParamScheduler`` mapping training progress in [0, 1) to a
factor of the base LR; :class:`LRMultiplier` turns it into a torch LR scheduler stepped every iteration.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    ConstantParamScheduler,
    LinearParamScheduler,
    ParamScheduler,
)
from torch import nn

__all__ = [
    "get_default_optimizer_params",
    "WarmupParamScheduler",
    "LRMultiplier",
]

_NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm2d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
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
    """One param group per parameter, with per-group ``lr``/``weight_decay`` (detectron2 semantics).

    Args:
        weight_decay_norm: decay of normalisation-layer parameters (e.g. 0.0); None keeps the default.
        weight_decay_bias: decay of biases; None keeps the default.
        lr_factor_func: ``module_param_name -> factor`` multiplying the lr (e.g. 0.1 for a backbone).
        overrides: ``{param_name: {"lr": ..., "weight_decay": ...}}`` (e.g. ``pos_embed`` without decay).
    Returns:
        list of dicts ``{"params": [p], ...}`` for ``torch.optim`` (groups with equal options are merged).
    """
    defaults = {}
    if base_lr is not None:
        defaults["lr"] = base_lr
    if weight_decay is not None:
        defaults["weight_decay"] = weight_decay
    bias_overrides = {}
    if weight_decay_bias is not None:
        bias_overrides["weight_decay"] = weight_decay_bias
    overrides = dict(overrides or {})
    if bias_overrides:
        overrides.setdefault("bias", {}).update(bias_overrides)
    if lr_factor_func is not None and base_lr is None:
        raise ValueError("lr_factor_func requires base_lr")

    groups: list[dict] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            hp = dict(defaults)
            if isinstance(module, _NORM_TYPES) and weight_decay_norm is not None:
                hp["weight_decay"] = weight_decay_norm
            if lr_factor_func is not None:
                hp["lr"] = hp["lr"] * lr_factor_func(f"{module_name}.{name}" if module_name else name)
            hp.update(overrides.get(name, {}))
            groups.append({"params": [p], **hp})
    return _merge_groups(groups)


def _merge_groups(groups: list[dict]) -> list[dict]:
    merged: dict[tuple, dict] = {}
    for g in groups:
        key = tuple(sorted((k, v) for k, v in g.items() if k != "params"))
        if key in merged:
            merged[key]["params"].extend(g["params"])
        else:
            merged[key] = {**g, "params": list(g["params"])}
    return list(merged.values())


class WarmupParamScheduler(CompositeParamScheduler):
    """``scheduler`` preceded by a linear (or constant) warmup over ``warmup_length`` of training.

    The warmup ramps from ``warmup_factor * scheduler(warmup_length)`` to ``scheduler(warmup_length)``.
    """

    def __init__(
        self,
        scheduler: ParamScheduler,
        warmup_factor: float,
        warmup_length: float,
        warmup_method: str = "linear",
        rescale_interval: bool = False,
    ):
        if not 0 <= warmup_length < 1:
            raise ValueError(f"warmup_length must be a fraction of training in [0, 1), got {warmup_length}")
        end = scheduler(warmup_length)
        start = warmup_factor * end
        if warmup_method == "linear":
            warmup = LinearParamScheduler(start, end)
        elif warmup_method == "constant":
            warmup = ConstantParamScheduler(start)
        else:
            raise ValueError(f"unknown warmup_method {warmup_method!r} (linear or constant)")
        super().__init__(
            [warmup, scheduler],
            interval_scaling=["rescaled", "rescaled" if rescale_interval else "fixed"],
            lengths=[warmup_length, 1 - warmup_length],
        )


class LRMultiplier(torch.optim.lr_scheduler.LRScheduler):
    """``lr = base_lr * multiplier(iteration / max_iter)``, stepped once per iteration.

    ``state_dict`` holds only ``base_lrs`` and ``last_epoch`` (the multiplier comes from the config), so
    checkpoints stay loadable with ``weights_only=True``.
    """

    def __init__(self, optimizer, multiplier: ParamScheduler, max_iter: int, last_iter: int = -1):
        if not isinstance(multiplier, ParamScheduler):
            raise TypeError(f"multiplier must be an fvcore ParamScheduler, got {type(multiplier).__name__}")
        self._multiplier = multiplier
        self._max_iter = max_iter
        super().__init__(optimizer, last_epoch=last_iter)

    def state_dict(self):
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict):
        self.base_lrs = list(state_dict["base_lrs"])
        self.last_epoch = int(state_dict["last_epoch"])
        self._last_lr = self._compute()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def _compute(self) -> list[float]:
        factor = self._multiplier(min(max(self.last_epoch, 0) / self._max_iter, math.nextafter(1.0, 0.0)))
        return [base * factor for base in self.base_lrs]

    def get_lr(self) -> list[float]:
        return self._compute()
