"""``instantiate``: build the objects a config describes, on hydra-core's ``instantiate``.

A node with ``_target_`` (a callable, or a dotted path resolved by hydra's ``get_object``) is called with
its other keys, built first, as keyword arguments; ``_partial_: True`` returns a partial instead (hydra's
semantics). hydra does the building. This module adds what a user needs when it fails: the config key
of the failing node (``model.backbone``) and close-match hints for a misspelt target or argument.
Two choices keep a recipe building the same objects under detectron2's own ``instantiate``: a config with
no ``_target_`` anywhere is returned as it is, and a dataclass-backed node becomes its dataclass.

detectron2's ``instantiate`` has no ``_partial_``; recipes that must also run there use :func:`deferred`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import logging
import re
from collections import abc
from contextlib import contextmanager
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["InstantiationError", "deferred", "instantiate", "locate", "signature_target"]


class InstantiationError(RuntimeError):
    """A config node could not be built; the message names its key path and its target."""


@contextmanager
def _hydra_quiet():
    # get_object logs every failed lookup at ERROR before raising; the raised error says it better.
    log = logging.getLogger("hydra.utils")
    was = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = was


def locate(name: str) -> Any:
    """The object at a dotted path (``"torch.nn.Conv2d"``), through hydra's ``get_object``.

    Raises:
        ImportError naming the path, the part that is missing and close matches of it.
    """
    if not isinstance(name, str) or not name or name.startswith("."):
        raise ImportError(f"Cannot locate {name!r}: expected an absolute dotted path like 'pkg.mod.Class'.")
    try:
        with _hydra_quiet():
            return get_object(name)
    except Exception as e:
        raise ImportError(f"Cannot locate {name!r}: {_missing_part(name) or e}") from e


def _missing_part(name: str) -> str:
    """'<parent>' has no attribute '<leaf>' (+ close matches), for the first part that does not resolve."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:i])
        try:
            with _hydra_quiet():
                obj = get_object(parent)
        except Exception:
            continue
        leaf = parts[i]
        close = difflib.get_close_matches(leaf, [n for n in dir(obj) if not n.startswith("_")], n=3)
        hint = f" Did you mean {' or '.join(repr(f'{parent}.{c}') for c in close)}?" if close else ""
        return f"{parent!r} has no attribute {leaf!r}.{hint}"
    return f"no module {parts[0]!r} can be imported."


def deferred(target, **kwargs) -> functools.partial:
    """``functools.partial(target, **kwargs)``: a config node that builds a callable, not an object.

    The same as ``_partial_: True``, but written as an ordinary target, so detectron2's ``instantiate``
    builds it too. Recipes use it where a parent supplies the rest (``head=L(deferred)(target=Head, ...)``:
    the segmentor passes ``input_shape``).
    """
    if isinstance(target, str):
        target = locate(target)
    if not callable(target):
        raise TypeError(f"deferred: target {target!r} is not callable")
    return functools.partial(target, **kwargs)


def signature_target(node) -> Any:
    """The callable whose parameters the keys of ``node`` are (looking through :func:`deferred`); None
    when the node has no ``_target_`` or it cannot be located."""
    if not isinstance(node, abc.Mapping) or "_target_" not in node:
        return None
    try:
        target = node["_target_"]
        target = locate(target) if isinstance(target, str) else target
        if target is deferred and "target" in node:
            target = node["target"]
            target = locate(target) if isinstance(target, str) else target
    except (ImportError, OmegaConfBaseException):
        return None
    return target


def _has_target(cfg: Any) -> bool:
    if isinstance(cfg, abc.Mapping):
        return "_target_" in cfg or any(_has_target(v) for v in cfg.values())
    if isinstance(cfg, (list, tuple, ListConfig)):
        return any(_has_target(v) for v in cfg)
    return False


def _full_key(cfg: Any) -> str:
    try:
        return cfg._get_full_key(None) if isinstance(cfg, (DictConfig, ListConfig)) else ""
    except Exception:
        return ""


def instantiate(cfg: Any) -> Any:
    """Build ``cfg``: a target node, or any container of them (lists element-wise, mappings by key).

    Returns ``cfg`` itself when it holds no ``_target_``. Callable targets, dotted-path targets and
    ``_partial_`` follow hydra-core.

    Raises:
        InstantiationError naming the key path of the failing node (``model.backbone``), its target and
        the cause, with close matches for a misspelt target or keyword argument.
    """
    if isinstance(cfg, DictConfig) and dataclasses.is_dataclass(cfg._metadata.object_type):
        return OmegaConf.to_object(cfg)
    if not _has_target(cfg):
        return cfg
    if isinstance(cfg, (list, tuple)):  # hydra takes a container only as a config
        return [instantiate(x) for x in cfg]
    root = _full_key(cfg)
    try:
        return hydra_instantiate(cfg)
    except InstantiationException as e:
        raise _explain(cfg, root, e) from e
    except OmegaConfBaseException as e:  # e.g. an interpolation that does not resolve
        key = _unreadable_key(cfg) or getattr(e, "full_key", "") or root
        node, _, arg = key.rpartition(".")
        raise InstantiationError(
            f"Cannot read argument {arg!r} of config key '{node or '<root>'}': {type(e).__name__}: {e}"
        ) from e


def _unreadable_key(cfg: Any) -> str:
    """Full key of the first value of ``cfg`` that cannot be read (e.g. a broken interpolation)."""
    if not isinstance(cfg, (DictConfig, ListConfig)):
        return ""
    for k in cfg.keys() if isinstance(cfg, DictConfig) else range(len(cfg)):
        try:
            value = cfg[k]
        except OmegaConfBaseException:
            return cfg._get_full_key(k)
        found = _unreadable_key(value)
        if found:
            return found
    return ""


def _explain(cfg: Any, root: str, error: InstantiationException) -> InstantiationError:
    """Our message for hydra's error: the failing node's key, its target, the cause, close matches."""
    found = re.search(r"full_key: (\S+)\s*$", str(error))
    key = found.group(1) if found else root
    rel = key[len(root) + 1 :] if root and key.startswith(root + ".") else ("" if key == root else key)
    try:
        node = OmegaConf.select(cfg, rel) if rel else cfg
    except Exception:
        node = None
    where = key or "<root>"
    if not isinstance(node, abc.Mapping) or "_target_" not in node:
        return InstantiationError(f"Error instantiating config key '{where}': {error}")
    target = node["_target_"]
    if isinstance(target, str):
        try:
            locate(target)
        except ImportError as e:
            return InstantiationError(f"Config key '{where}': cannot locate _target_ {target!r}: {e}")
    name = target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"
    cause = error.__cause__ or error
    hint = ""
    bad = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    fn = signature_target(node)
    if bad and fn is not None:
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            params = []
        close = difflib.get_close_matches(bad.group(1), params, n=3)
        hint = f". Did you mean {' or '.join(repr(f'{where}.{c}') for c in close)}?" if close else ""
    return InstantiationError(
        f"Error instantiating config key '{where}' (_target_ {name}): {type(cause).__name__}: {cause}{hint}"
    )
