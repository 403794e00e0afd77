"""softlabelseg.config: LazyConfig recipes (LazyCall, LazyConfig) and ``instantiate``."""

from .instantiate import InstantiationError, deferred, instantiate, locate
from .lazy import LazyCall, LazyConfig

L = LazyCall

__all__ = ["InstantiationError", "L", "LazyCall", "LazyConfig", "deferred", "instantiate", "locate"]
