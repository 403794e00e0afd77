"""Strict checkpoint loading with errors that name the keys that do not match the recipe's model."""

from __future__ import annotations

import os

import torch
from torch import nn

_SHOWN = 8


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's state dict does not fit the model the recipe builds."""


def _names(keys, shown=_SHOWN) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - shown} more)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Model weights from a ``.pth`` file: a bare state dict or a trainer checkpoint ``{"model": ...}``.

    Loaded with ``weights_only=True``; a ``module.`` prefix (DistributedDataParallel) is stripped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointMismatchError(
            f"cannot read checkpoint {path!r} as a PyTorch weights file: {e}"
        ) from e
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(
            f"checkpoint {path!r} holds no state dict (expected a dict of tensors or {{'model': state_dict}})"
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_checkpoint(model: nn.Module, path: str | os.PathLike, config_name: str = "the recipe") -> nn.Module:
    """Load ``path`` into ``model`` strictly; raise :class:`CheckpointMismatchError` naming the
    missing keys, the unexpected keys and the shape mismatches (``key: checkpoint vs model``)."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = set(own) - set(state)
    unexpected = set(state) - set(own)
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [f"checkpoint {os.fspath(path)!r} does not match the model built by {config_name}:"]
        if missing:
            parts.append(f"  {len(missing)} missing key(s): {_names(missing)}")
        if unexpected:
            parts.append(f"  {len(unexpected)} unexpected key(s): {_names(unexpected)}")
        if shapes:
            parts.append(f"  {len(shapes)} shape mismatch(es): " + "; ".join(shapes[:_SHOWN]))
        parts.append("  Export with the recipe the checkpoint was trained with (and the same overrides).")
        raise CheckpointMismatchError("\n".join(parts))
    model.load_state_dict(state, strict=True)
    return model
