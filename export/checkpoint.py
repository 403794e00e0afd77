"""Strict checkpoint loading for export: the training's reader (softlabelseg.engine.checkpoint, .pth or
.safetensors), with errors that name the keys that do not match the recipe's model."""

from __future__ import annotations

import os

import torch
from softlabelseg.engine.checkpoint import (
    CheckpointError,
    apply_calibration,
    nonfinite_tensors,
    read_checkpoint,
    state_dict_mismatch,
)
from torch import nn

from .guards import first_names


class CheckpointMismatchError(RuntimeError):
    """The checkpoint's state dict does not fit the model the recipe builds."""


class NonFiniteWeightsError(CheckpointMismatchError):
    """The checkpoint holds NaN or inf weights: nothing exported or verified from it could work."""


def _read(path) -> tuple[dict[str, torch.Tensor], dict]:
    """(the model's state dict, the checkpoint's other entries) from a ``.pth`` (a bare state dict or a
    trainer checkpoint ``{"model": ...}``, loaded with ``weights_only=True``) or a ``.safetensors`` file; a
    ``module.`` prefix (DistributedDataParallel) is stripped. Raises :class:`NonFiniteWeightsError` naming
    the tensors that hold NaN or inf."""
    path = os.fspath(path)
    try:
        data = read_checkpoint(path)
        state = data.pop("model")
    except CheckpointError as e:
        raise CheckpointMismatchError(f"cannot read checkpoint {path!r}: {e}") from None
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(
            f"checkpoint {path!r} holds no state dict (expected a dict of tensors or {{'model': state_dict}})"
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    bad = nonfinite_tensors(state)
    if bad:
        raise NonFiniteWeightsError(
            f"checkpoint {path!r} holds NaN or inf values in {len(bad)} of {len(state)} tensors "
            f"({first_names(bad)}): the training that saved it diverged. Export a checkpoint saved before "
            "the divergence (an earlier model_*.pth of the run), or train again with a lower learning rate."
        )
    return state, data


def load_checkpoint(model: nn.Module, path: str | os.PathLike, config_name: str = "the recipe",
                    max_abs_weight: float | None = 1e6) -> nn.Module:
    """Load ``path`` into ``model`` strictly, with the class offsets it carries (baked into the export);
    raise :class:`CheckpointMismatchError` naming the missing keys, the unexpected keys and the shape
    mismatches (``key: checkpoint vs model``), and :class:`NonFiniteWeightsError` for parameters beyond
    ``max_abs_weight`` (the recipe's ``train.divergence.max_abs_weight``, as ``--eval-only`` judges them)."""
    state, rest = _read(path)
    judged = [k for k, _ in model.named_parameters()]
    judged += [k for k, _ in model.named_buffers() if k.endswith("running_var")]  # as --eval-only judges
    big = [k for k in judged if max_abs_weight is not None and k in state and state[k].is_floating_point()
           and state[k].numel() and float(state[k].abs().max()) > max_abs_weight]
    if big:
        raise NonFiniteWeightsError(
            f"checkpoint {os.fspath(path)!r} holds diverged weights: {len(big)} parameter(s) exceed "
            f"|{max_abs_weight:g}| (train.divergence.max_abs_weight; {first_names(big)}), so every output "
            "would be meaningless. Use a checkpoint saved before the divergence (an earlier model_*.pth of "
            "the run), or train again with a lower learning rate.")
    mismatch = state_dict_mismatch(model, state)
    if mismatch:
        raise CheckpointMismatchError("\n".join([
            f"checkpoint {os.fspath(path)!r} does not match the model built by {config_name}:",
            *(f"  {line}" for line in mismatch),
            "  Export with the recipe the checkpoint was trained with (and the same overrides).",
        ]))  # fmt: skip
    model.load_state_dict(state, strict=True)
    apply_calibration(model, rest)
    return model
