"""LazyCall and LazyConfig: detectron2-style Python/YAML configs on omegaconf + hydra-core.

A LazyConfig file is Python and RUNS when loaded (like any script); only load files you trust.
Config files may import each other relatively (``from ..common.data.toycity import dataloader``):
the import is resolved against the importing file's folder, not ``sys.path``.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib.machinery
import importlib.util
import inspect
import logging
import os
import uuid
from collections import abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from .instantiate import locate
from .overrides import apply_overrides

__all__ = ["LazyCall", "LazyConfig"]

logger = logging.getLogger(__name__)

_CFG_PACKAGE_NAME = "softlabelseg._cfg_loader"


class LazyCall:
    """Wrap a callable so that calling it records the call instead of running it.

    ``LazyCall(Conv2d)(in_channels=3, out_channels=8)`` returns
    ``DictConfig({"_target_": Conv2d, "in_channels": 3, "out_channels": 8})``; ``instantiate`` runs it.
    """

    def __init__(self, target: Any):
        if not (callable(target) or isinstance(target, (str, abc.Mapping))):
            raise TypeError(f"target of LazyCall must be a callable or a dotted string, got {target!r}")
        self._target = target

    def __call__(self, **kwargs: Any) -> DictConfig:
        target = self._target
        if dataclasses.is_dataclass(target):
            target = _convert_target_to_string(target)  # omegaconf would turn a dataclass into a node
        return DictConfig(content={"_target_": target, **kwargs}, flags={"allow_objects": True})


def _convert_target_to_string(t: Any) -> str:
    """Shortest importable dotted name of ``t`` (``pkg.mod._impl.Cls`` -> ``pkg.mod.Cls`` if equal)."""
    module, qualname = t.__module__, t.__qualname__
    parts = module.split(".")
    for k in range(1, len(parts)):
        candidate = f"{'.'.join(parts[:k])}.{qualname}"
        try:
            if locate(candidate) is t:
                return candidate
        except ImportError:
            pass
    return f"{module}.{qualname}"


def _visit_dict_config(cfg: Any, func) -> None:
    """Apply ``func`` to every DictConfig in ``cfg`` (depth first, in place)."""
    if isinstance(cfg, DictConfig):
        func(cfg)
        for v in cfg.values():
            _visit_dict_config(v, func)
    elif isinstance(cfg, ListConfig):
        for v in cfg:
            _visit_dict_config(v, func)


def _validate_py_syntax(filename: str) -> None:
    with open(filename, encoding="utf-8") as f:
        content = f.read()
    try:
        ast.parse(content, filename)
    except SyntaxError as e:
        raise SyntaxError(f"Config file {filename} has syntax error!") from e


def _cast_to_config(obj: Any) -> Any:
    if isinstance(obj, dict):
        return DictConfig(obj, flags={"allow_objects": True})
    return obj


def _random_package_name(filename: str) -> str:
    # Unique per load, so two files with the same name never share a module.
    return f"{_CFG_PACKAGE_NAME}{uuid.uuid4().hex[:8]}.{os.path.basename(filename)}"


def _find_relative_file(original_file: str, relative_import_path: str, level: int) -> str:
    """Path of the file (or folder) named by a relative import from ``original_file``."""
    cur = os.path.dirname(original_file)
    for _ in range(level - 1):
        cur = os.path.dirname(cur)
    name = relative_import_path.lstrip(".")
    for part in name.split(".") if name else []:
        cur = os.path.join(cur, part)
    if os.path.isdir(cur):
        return cur
    cur += ".py"
    if not os.path.isfile(cur):
        raise ImportError(
            f"Cannot import {'.' * level}{name} from config file {original_file}: {cur} does not exist. "
            "Relative imports in config files are resolved against the config file's folder."
        )
    return cur


def _exec_config_file(path: str) -> dict:
    """Run one config file in a fresh namespace (inside ``_patch_import``) and return it."""
    _validate_py_syntax(path)
    spec = importlib.machinery.ModuleSpec(_random_package_name(path), None, origin=path)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = path
    with open(path, encoding="utf-8") as f:
        content = f.read()
    exec(compile(content, path, "exec"), module.__dict__)
    return module


@contextmanager
def _patch_import() -> Iterator[None]:
    """Within the block, relative imports made by config files load config files by path."""
    old_import = builtins.__import__

    def new_import(name, globals=None, locals=None, fromlist=(), level=0):
        if (
            level != 0
            and globals is not None
            and (globals.get("__package__", "") or "").startswith(_CFG_PACKAGE_NAME)
        ):
            target = _find_relative_file(globals["__file__"], name, level)
            if os.path.isdir(target):
                # ``from ..common import train``: each name is a config file in that folder.
                module = type(builtins)(os.path.basename(target))
                for item in fromlist or ():
                    sub = _find_relative_file(os.path.join(target, "__init__.py"), item, 1)
                    if os.path.isdir(sub):
                        raise ImportError(f"Cannot import config folder {sub}; import a file from it.")
                    submodule = _exec_config_file(sub)
                    for k, v in list(vars(submodule).items()):
                        if isinstance(v, dict) and not k.startswith("_"):
                            setattr(submodule, k, _cast_to_config(v))
                    setattr(module, item, submodule)
                return module
            module = _exec_config_file(target)
            for item in fromlist or ():
                if item not in module.__dict__:
                    raise ImportError(f"Cannot import name {item!r} from config file {target}")
                module.__dict__[item] = _cast_to_config(module.__dict__[item])
            return module
        return old_import(name, globals, locals, fromlist=fromlist, level=level)

    builtins.__import__ = new_import
    try:
        yield
    finally:
        builtins.__import__ = old_import


class LazyConfig:
    """Load, save and override LazyConfig files (Python or YAML)."""

    @staticmethod
    def load(filename: str, keys: None | str | Sequence[str] = None):
        """Load a ``.py`` or ``.yaml`` config.

        Args:
            filename: path of the config file.
            keys: None -> a DictConfig of all top-level config objects (dicts/DictConfigs/ListConfigs
                whose name does not start with ``_``); a str -> that one object; a tuple -> a tuple.
        """
        filename = os.fspath(filename)
        ext = os.path.splitext(filename)[1]
        if ext not in (".py", ".yaml", ".yml"):
            raise ValueError(f"Config file {filename} must be a .py, .yaml or .yml file.")
        if not os.path.isfile(filename):
            raise FileNotFoundError(f"Config file {filename} does not exist.")
        if ext == ".py":
            with _patch_import():
                ret = _exec_config_file(os.path.abspath(filename)).__dict__
        else:
            with open(filename, encoding="utf-8") as f:
                obj = yaml.safe_load(f) or {}
            ret = OmegaConf.create(obj, flags={"allow_objects": True})

        if keys is not None:
            missing = [k for k in ([keys] if isinstance(keys, str) else keys) if k not in ret]
            if missing:
                raise KeyError(f"Config file {filename} does not define {missing}.")
            if isinstance(keys, str):
                return _cast_to_config(ret[keys])
            return tuple(_cast_to_config(ret[k]) for k in keys)
        if ext == ".py":
            ret = DictConfig(
                {
                    k: _cast_to_config(v)
                    for k, v in ret.items()
                    if isinstance(v, (DictConfig, ListConfig, dict)) and not k.startswith("_")
                },
                flags={"allow_objects": True},
            )
        return ret

    @staticmethod
    def load_rel(filename: str, keys: None | str | Sequence[str] = None):
        """``load`` with ``filename`` relative to the config file that calls it (inside config files)."""
        caller = inspect.stack()[1].frame.f_globals.get("__file__")
        if not caller:
            raise RuntimeError("load_rel must be called from a config file; use LazyConfig.load elsewhere.")
        return LazyConfig.load(os.path.join(os.path.dirname(caller), filename), keys)

    @staticmethod
    def save(cfg, filename: str, resolve: bool = True) -> None:
        """Save ``cfg`` as YAML (interpolations resolved unless ``resolve=False``).

        Callable ``_target_`` values become dotted strings. Values YAML cannot represent (arbitrary
        objects, lambdas) are written as ``"<unserializable: repr>"`` strings with a warning that names
        their keys: the file stays readable and loadable, but those entries do not round-trip.
        """
        cfg = OmegaConf.create(cfg, flags={"allow_objects": True}) if isinstance(cfg, dict) else cfg
        try:
            cfg = cfg.copy()
            cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False), flags={"allow_objects": True})
        except Exception:  # deep copy failed: convert in place on the original
            pass

        def _targets_to_str(node):
            t = node.get("_target_", None)
            if t is not None and callable(t) and not isinstance(t, str):
                try:
                    node["_target_"] = _convert_target_to_string(t)
                except AttributeError:
                    pass

        _visit_dict_config(cfg, _targets_to_str)
        try:
            data = OmegaConf.to_container(cfg, resolve=resolve)
        except Exception as e:
            logger.warning("Could not resolve interpolations in the config (%s); saving them unresolved.", e)
            data = OmegaConf.to_container(cfg, resolve=False)
        bad: list[str] = []
        data = _make_yaml_safe(data, "", bad)
        if bad:
            logger.warning(
                "Config values at %s cannot be saved as YAML; %s stores their repr instead.",
                ", ".join(bad), filename,
            )
        dirname = os.path.dirname(os.path.abspath(filename))
        os.makedirs(dirname, exist_ok=True)
        with open(filename, "w", encoding="utf-8") as f:
            yaml.safe_dump(data, f, default_flow_style=None, allow_unicode=True, width=9999, sort_keys=False)

    @staticmethod
    def apply_overrides(cfg, overrides: Sequence[str]):
        """Apply hydra-syntax command-line overrides to ``cfg`` in place and return it.

        See :func:`softlabelseg.config.overrides.apply_overrides`.
        """
        return apply_overrides(cfg, overrides)


def _make_yaml_safe(obj: Any, path: str, bad: list[str]) -> Any:
    if isinstance(obj, dict):
        return {str(k): _make_yaml_safe(v, f"{path}.{k}" if path else str(k), bad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_make_yaml_safe(v, f"{path}.{i}" if path else str(i), bad) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
        try:
            name = _convert_target_to_string(obj)
            if locate(name) is obj:
                bad.append(path)
                return name
        except (AttributeError, ImportError):
            pass
    bad.append(path)
    return f"<unserializable: {obj!r}>"
