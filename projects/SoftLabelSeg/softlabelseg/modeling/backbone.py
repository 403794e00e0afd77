"""Backbone interface and the timm feature-extractor wrapper.

A backbone maps ``(N, 3, H, W)`` float images to a dict ``{name: (N, C_k, H / s_k, W / s_k)}`` and
describes it with ``output_shape() -> {name: (C_k, s_k)}`` so heads never hard-code channels.
Feature names are ``stage{i}`` with ``i`` the timm feature index: ``stage1`` .. ``stage4`` have nominal
strides 4, 8, 16, 32 (smaller when dilated), ``stage0`` is the stride-2 stem where a model has one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import timm
import torch
from torch import nn

from . import pretrained as pretrained_weights

__all__ = ["Backbone", "TimmBackbone", "load_state_dict_file"]

logger = logging.getLogger(__name__)


class Backbone(nn.Module):
    """Base class: subclasses set ``self._out_shape = {name: (channels, stride)}`` in order."""

    _out_shape: dict[str, tuple[int, int]]

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """``{name: (channels, stride)}`` of the tensors ``forward`` returns, highest resolution first."""
        return dict(self._out_shape)

    @property
    def size_divisibility(self) -> int:
        """Input sizes should be multiples of this (the largest nominal stride)."""
        return 32


def load_state_dict_file(path: str) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (safetensors or ``torch.load(weights_only=True)``).

    Unwraps the common ``{"state_dict": ...}`` / ``{"model": ...}`` containers and a ``module.`` prefix.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        sd = load_file(path)
    else:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    return {k.removeprefix("module."): v for k, v in sd.items()}


class TimmBackbone(Backbone):
    """A timm model created with ``features_only=True``.

    Args:
        model_name: timm name, e.g. ``"resnet101d"``, ``"hrnet_w48"``.
        out_indices: timm feature indices to return (``stage{i}`` names).
        pretrained: timm's own pretrained weights (needs them cached or internet).
        checkpoint: a local weights file in timm's key names, loaded strictly (``modeling.pretrained``).
        weights: an installed weights package, e.g. ``"efficientnet-lite0"``
            (``pretrained.WEIGHTS_PACKAGES``), mapped onto timm's keys and loaded strictly.
            At most one of the three weight sources; none is read inside
            ``pretrained.skip_initial_weights()`` (a trained checkpoint follows), the normalisation stays.
        output_stride: 8 or 16 dilates the last stages (models that support it, e.g. ResNets).
        **kwargs: passed to ``timm.create_model`` (e.g. ``feature_location=""`` for raw HRNet branches).
    """

    def __init__(
        self,
        model_name: str,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        pretrained: bool = False,
        checkpoint: str | None = None,
        output_stride: int | None = None,
        weights: str | None = None,
        **kwargs,
    ):
        super().__init__()
        given = (("pretrained", pretrained), ("checkpoint", checkpoint), ("weights", weights))
        sources = [k for k, v in given if v]
        if len(sources) > 1:
            raise ValueError(f"model.backbone: give one weight source, not {' and '.join(sources)}")
        if output_stride is not None:
            kwargs["output_stride"] = output_stride
        if pretrained_weights.initial_weights_skipped():  # a trained checkpoint brings every tensor
            pretrained, checkpoint, weights = False, None, None
        if checkpoint and not os.path.isfile(checkpoint):
            raise FileNotFoundError(
                f"model.backbone.checkpoint={checkpoint} does not exist; give a weights file or null"
            )
        state = source = None
        if weights:  # resolved before the model is built: a missing package fails at once
            state, package = pretrained_weights.package_state_dict(weights, model_name)
            source = f"{weights} ({package.distribution})"
        self.body = timm.create_model(
            model_name, features_only=True, out_indices=tuple(out_indices), pretrained=bool(pretrained),
            **kwargs,
        )
        if checkpoint:
            state, source = load_state_dict_file(checkpoint), checkpoint
        if state is not None:
            arch_kwargs = {k: v for k, v in kwargs.items() if k != "feature_location"}
            with torch.device("meta"):
                whole = timm.create_model(model_name, pretrained=False, **arch_kwargs)
            pretrained_weights.load_strict(self.body, state, whole.state_dict().keys(), source)
        #: (mean, std) in 0..255 that the loaded weights expect; None for random init.
        self.normalization = (
            pretrained_weights.timm_normalization(self.body) if sources else None
        )
        info = self.body.feature_info
        self._names = [f"stage{i}" for i in out_indices]
        self._out_shape = {
            n: (c, r) for n, c, r in zip(self._names, info.channels(), info.reduction(), strict=True)
        }
        self._max_stride = max(2 ** (i + 1) for i in out_indices)

    @property
    def size_divisibility(self) -> int:
        return self._max_stride

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (N, 3, H, W) normalised float -> {stage{i}: (N, C_i, H / s_i, W / s_i)}."""
        return dict(zip(self._names, self.body(x), strict=True))
