"""Dataset and metadata catalogs (detectron2-style ``register`` / ``get``) and the dataset root.

A dataset name maps to a function returning records ``dict(file_name, sem_seg_file_name, height, width,
image_id)``; its metadata carries class names, colours, the ignore value and the label mapping.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DATASETS_ENV", "DatasetCatalog", "DatasetNotFoundError", "Metadata", "MetadataCatalog",
           "dataset_root", "register_name_pattern"]

DATASETS_ENV = "SOFTLABELSEG_DATASETS"
_DEFAULT_ROOT = "./datasets"
logger = logging.getLogger(__name__)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or split is missing; the message names the path looked for and how to set it."""


def dataset_root() -> Path:
    """The datasets folder: ``$SOFTLABELSEG_DATASETS``, default ``./datasets`` (read on every call).

    Raises :class:`DatasetNotFoundError` when that path exists but is not a folder.
    """
    root = Path(os.environ.get(DATASETS_ENV, _DEFAULT_ROOT)).expanduser()
    if root.is_symlink() and not root.exists():
        raise DatasetNotFoundError(
            f"the datasets root {os.fspath(root)!r} (${DATASETS_ENV}, default {_DEFAULT_ROOT!r}) is a "
            f"symbolic link that leads nowhere (to {os.readlink(root)!r}: a missing target or a loop); point "
            f"${DATASETS_ENV} to a real folder"
        )
    if root.exists() and not root.is_dir():
        raise DatasetNotFoundError(
            f"the datasets root {os.fspath(root)!r} (${DATASETS_ENV}, default {_DEFAULT_ROOT!r}) is a file, "
            f"not a folder; point ${DATASETS_ENV} to the folder that holds the datasets"
        )
    return root


def missing_path_error(what: str, path: os.PathLike | str, expected: str) -> DatasetNotFoundError:
    """An error for a missing dataset path that says where it looked and how to point elsewhere."""
    return DatasetNotFoundError(
        f"{what}: {os.fspath(path)!r} does not exist. Expected layout: {expected}. Datasets are looked up "
        f"under ${DATASETS_ENV} (now {os.fspath(dataset_root())!r}, default {_DEFAULT_ROOT!r}); set it, e.g. "
        f"`export {DATASETS_ENV}=/path/to/datasets`."
    )


_NAME_PATTERNS: dict[str, Callable[[str], None]] = {}


def register_name_pattern(prefix: str, register: Callable[[str], None]) -> None:
    """Names starting with ``prefix`` are registered when first looked up (``in``, ``get`` of either
    catalog) by ``register(name)``, which registers the dataset first, then its metadata; its errors
    (a missing data file, say) reach the caller. E.g. ``folder:<data file>:<split>``."""
    _NAME_PATTERNS[prefix] = register


def _register_on_demand(name: str) -> None:
    if not isinstance(name, str) or name in DatasetCatalog._fns:
        return
    for prefix, register in _NAME_PATTERNS.items():
        if name.startswith(prefix):
            register(name)
            return


class _DatasetCatalog:
    """name -> function returning ``list[dict]`` records. Functions run on every ``get``; names of a
    :func:`register_name_pattern` are registered on first use."""

    def __init__(self):
        self._fns: dict[str, Callable[[], list[dict]]] = {}

    def register(self, name: str, func: Callable[[], list[dict]]) -> None:
        if not callable(func):
            raise TypeError(f"DatasetCatalog.register({name!r}): func must be callable, got {type(func)}")
        if name in self._fns:
            raise KeyError(f"dataset {name!r} is already registered")
        self._fns[name] = func

    def get(self, name: str) -> list[dict]:
        _register_on_demand(name)
        try:
            fn = self._fns[name]
        except KeyError:
            known = ", ".join(self.list())
            raise KeyError(f"dataset {name!r} is not registered; registered: {known}") from None
        return fn()

    def list(self) -> list[str]:
        return sorted(self._fns)

    def remove(self, name: str) -> None:
        self._fns.pop(name)

    def __contains__(self, name: str) -> bool:
        _register_on_demand(name)
        return name in self._fns


class Metadata:
    """Attribute bag. ``set`` rejects changing an existing value; ``set_lazy`` defers costly attributes
    (e.g. class names read from a dataset's config file) until first access."""

    def __init__(self, name: str = ""):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_lazy", {})

    def __getattr__(self, key: str) -> Any:
        lazy = object.__getattribute__(self, "_lazy")
        if key in lazy:
            for k, v in lazy.pop(key)().items():
                if k not in self.__dict__:
                    object.__setattr__(self, k, v)
            for k in list(lazy):  # one loader may provide several keys
                if k in self.__dict__:
                    lazy.pop(k)
            if key in self.__dict__:
                return self.__dict__[key]
        raise AttributeError(f"metadata of {self.name!r} has no {key!r}; it has {sorted(self.as_dict())}")

    def __setattr__(self, key: str, value: Any) -> None:
        old = self.__dict__.get(key, value)
        if key in self.__dict__ and not _same(old, value):
            raise AttributeError(f"metadata {key!r} of {self.name!r} is already {old!r}; refusing {value!r}")
        object.__setattr__(self, key, value)

    def set(self, **kwargs) -> Metadata:
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def set_lazy(self, keys: list[str], loader: Callable[[], dict]) -> Metadata:
        """Attributes ``keys`` come from ``loader()`` (a dict) the first time any of them is read."""
        for k in keys:
            self._lazy[k] = loader
        return self

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            return default

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"Metadata({self.as_dict()})"


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and other types without a scalar ==
        return a is b


class _MetadataCatalog:
    """name -> :class:`Metadata`; ``get`` creates an empty one for unknown names, as detectron2 does."""

    def __init__(self):
        self._meta: dict[str, Metadata] = {}

    def get(self, name: str) -> Metadata:
        _register_on_demand(name)
        if name not in self._meta:
            self._meta[name] = Metadata(name)
        return self._meta[name]

    def list(self) -> list[str]:
        return sorted(self._meta)

    def remove(self, name: str) -> None:
        self._meta.pop(name, None)


DatasetCatalog = _DatasetCatalog()
MetadataCatalog = _MetadataCatalog()
