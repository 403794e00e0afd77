"""``instantiate``: build objects from ``_target_`` configs (detectron2's recursive semantics)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections import abc
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["InstantiationError", "instantiate", "locate"]


class InstantiationError(RuntimeError):
    """Raised when a config node cannot be built; the message names the key path and the target."""


def locate(name: str) -> Any:
    """Return the object named by a dotted path such as ``"torch.nn.Conv2d"``.

    Imports the longest importable module prefix, then resolves the rest as attributes. An error
    raised while importing an existing module propagates unchanged (it is a real bug, not a typo).
    """
    if not isinstance(name, str) or not name or name.startswith("."):
        raise ImportError(f"Cannot locate {name!r}: expected an absolute dotted path like 'pkg.mod.Class'.")
    parts = name.split(".")
    obj, depth = None, 0
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            obj = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            # Only swallow "this very module does not exist"; a missing dependency inside it propagates.
            if e.name is not None and modname != e.name and not modname.startswith(e.name + "."):
                raise
            continue
        depth = i
        break
    if obj is None:
        raise ImportError(f"Cannot locate {name!r}: no module {parts[0]!r} can be imported.")
    for j, attr in enumerate(parts[depth:], start=depth):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            prefix = ".".join(parts[:j])
            raise ImportError(f"Cannot locate {name!r}: {prefix!r} has no attribute {attr!r}.") from None
    return obj


def _target_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    try:
        return f"{target.__module__}.{target.__qualname__}"
    except AttributeError:
        return repr(target)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _has_target(cfg: Any) -> bool:
    if isinstance(cfg, abc.Mapping):
        return "_target_" in cfg or any(_has_target(v) for v in cfg.values())
    if isinstance(cfg, (list, tuple, ListConfig)):
        return any(_has_target(v) for v in cfg)
    return False


def instantiate(cfg: Any, _path: str | None = None) -> Any:
    """Recursively build ``cfg``.

    - A mapping with ``_target_`` (a callable or a dotted string) is called with its other keys, which
      are instantiated first (depth first), as keyword arguments.
    - A list is instantiated element-wise; a mapping without ``_target_`` that contains targets becomes
      a plain dict of instantiated values, otherwise it is returned as-is (like detectron2).
    - Structured (dataclass-backed) DictConfigs become their dataclass.
    - ``_partial_: True`` returns ``functools.partial(target, **kwargs)`` instead of calling it (as in
      hydra); used where a parent supplies the remaining arguments (a head's ``input_shape``).

    Raises:
        InstantiationError naming the key path (e.g. ``model.backbone``) and the target on failure.
    """
    if _path is None:  # top call: name errors by the node's full key in its root config ("model.backbone")
        try:
            _path = cfg._get_full_key(None) if isinstance(cfg, (DictConfig, ListConfig)) else ""
        except Exception:
            _path = ""
    if isinstance(cfg, ListConfig):
        return ListConfig([instantiate(x, _join(_path, i)) for i, x in enumerate(cfg)],
                          flags={"allow_objects": True})
    if isinstance(cfg, list):
        return [instantiate(x, _join(_path, i)) for i, x in enumerate(cfg)]
    if isinstance(cfg, DictConfig) and dataclasses.is_dataclass(cfg._metadata.object_type):
        return OmegaConf.to_object(cfg)
    if not isinstance(cfg, abc.Mapping):
        return cfg
    if "_target_" not in cfg:
        if not _has_target(cfg):
            return cfg
        return {k: instantiate(v, _join(_path, k)) for k, v in cfg.items()}

    where = _path or "<root>"
    try:
        kwargs = {
            k: instantiate(v, _join(_path, k)) for k, v in cfg.items() if k not in ("_target_", "_partial_")
        }
    except InstantiationError:
        raise
    except Exception as e:  # e.g. an interpolation that cannot be resolved
        raise InstantiationError(f"Cannot read the arguments of config key '{where}': {e}") from e
    target = cfg["_target_"]
    name = _target_name(target)
    if isinstance(target, str):
        try:
            target = locate(target)
        except ImportError as e:
            raise InstantiationError(f"Config key '{where}': cannot locate _target_ {name!r}: {e}") from e
    if not callable(target):
        raise InstantiationError(f"Config key '{where}': _target_ {name!r} is not callable.")
    if cfg.get("_partial_", False):
        return functools.partial(target, **kwargs)
    try:
        return target(**kwargs)
    except InstantiationError:
        raise
    except Exception as e:
        raise InstantiationError(
            f"Error instantiating config key '{where}' (_target_ {name}): {type(e).__name__}: {e}"
        ) from e
