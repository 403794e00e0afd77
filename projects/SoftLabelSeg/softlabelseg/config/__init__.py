"""softlabelseg.config: detectron2-style lazy configs (LazyCall, LazyConfig, instantiate)."""

from .instantiate import InstantiationError, instantiate, locate
from .lazy import LazyCall, LazyConfig

L = LazyCall

__all__ = ["InstantiationError", "L", "LazyCall", "LazyConfig", "instantiate", "locate"]
