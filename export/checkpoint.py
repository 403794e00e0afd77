"""Strict checkpoint loading for export and verify, through ``softlabelseg.checkpoint_io`` (the reader the
trainer, the demo and ``--eval-only`` use: .pth or .safetensors, ``module.`` stripped, NaN / inf and
diverged weights refused, keys that do not match the recipe's model named)."""

from __future__ import annotations

import os

from softlabelseg.checkpoint_io import CheckpointError, NonFiniteWeightsError, load_weights, read_weights
from torch import nn

__all__ = ["CheckpointMismatchError", "NonFiniteWeightsError", "load_checkpoint", "read_for_export"]

# The error export and verify report for a checkpoint they cannot use (kept as the name their callers catch).
CheckpointMismatchError = CheckpointError


def read_for_export(model: nn.Module, path: str | os.PathLike, config_name: str = "the recipe",
                    max_abs_weight: float | None = 1e6) -> dict:
    """Loads ``path`` into ``model`` strictly, with the class offsets it carries (baked into the export);
    returns the checkpoint's other entries (its ``meta``), so the file is read once. Raises
    :class:`CheckpointError` naming the missing keys, the unexpected keys and the shape mismatches, and
    :class:`NonFiniteWeightsError` for NaN / inf or parameters beyond ``max_abs_weight`` (the recipe's
    ``train.divergence.max_abs_weight``, as ``--eval-only`` judges them)."""
    path = os.fspath(path)
    data = read_weights(path, model, max_abs_weight)
    return load_weights(model, data, path, config_name)


def load_checkpoint(model: nn.Module, path: str | os.PathLike, config_name: str = "the recipe",
                    max_abs_weight: float | None = 1e6) -> nn.Module:
    """:func:`read_for_export`, returning ``model``."""
    read_for_export(model, path, config_name, max_abs_weight)
    return model
