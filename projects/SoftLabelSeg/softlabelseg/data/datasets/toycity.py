"""ToyCity readers: generate on first use (see the ``data.toycity`` package), then read as Cityscapes."""
from __future__ import annotations

from pathlib import Path

from ..toycity import ToyCityParams, ensure_toycity
from .cityscapes import load_cityscapes_semantic

__all__ = ["load_toycity_semantic"]


def load_toycity_semantic(root, split: str, params: ToyCityParams = ToyCityParams()) -> list[dict]:
    """Records of ToyCity ``split`` under ``root`` (the datasets root), generating the set when needed."""
    folder = ensure_toycity(Path(root), params)
    return load_cityscapes_semantic(folder, split)
