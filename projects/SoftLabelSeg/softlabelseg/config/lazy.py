"""LazyCall and LazyConfig: recipes as Python (or YAML) files of omegaconf nodes.

The recipe format is detectron2's, kept on purpose so that the same file loads under
``detectron2.config.LazyConfig`` and runs under detectron2's tools:

- a recipe is a Python file; its top-level dicts, DictConfigs and ListConfigs whose names do not start
  with ``_`` are the config (plain dicts become DictConfigs);
- a relative import in a recipe (``from ..common.optim import SGD``) names another recipe *file*, found
  from the importing file's folder, not from ``sys.path``; ``from ..common import train`` imports the file
  ``common/train.py``. Every import runs the file again, so nodes are never shared between imports;
- ``LazyConfig.save`` writes YAML with callable targets as dotted paths, which ``load`` reads back.

How it is done here: each recipe file runs in a namespace of its own whose ``__builtins__`` carry an
``__import__`` bound to that file's folder. Absolute imports go to Python's import system unchanged and
nothing global is patched, so loading is safe from other threads.

A recipe is Python and RUNS when loaded, like any script: only load files you trust.
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import logging
import os
import types
from collections import abc
from collections.abc import Sequence
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from .instantiate import deferred, locate
from .overrides import apply_overrides

__all__ = ["LazyCall", "LazyConfig"]

logger = logging.getLogger(__name__)
_CONFIG_TYPES = (dict, DictConfig, ListConfig)


def _node(content) -> DictConfig:
    return DictConfig(content, flags={"allow_objects": True})


class LazyCall:
    """``LazyCall(f)(**kwargs)`` records the call as ``DictConfig({"_target_": f, **kwargs})``; it runs
    when the node is passed to ``instantiate``. ``f`` is a callable or a dotted path."""

    def __init__(self, target: Any):
        if not (callable(target) or isinstance(target, (str, abc.Mapping))):
            raise TypeError(f"LazyCall needs a callable or a dotted path, got {target!r}")
        self._target = target

    def __call__(self, **kwargs: Any) -> DictConfig:
        target = self._target
        if dataclasses.is_dataclass(target):  # omegaconf would expand a dataclass into its fields
            target = dotted_name(target)
        return _node({"_target_": target, **kwargs})


def dotted_name(obj: Any) -> str:
    """The shortest dotted path that :func:`locate` maps back to ``obj`` (a package re-export such as
    ``softlabelseg.modeling.TinyCNN`` rather than its defining module), else ``module.qualname``."""
    module, qualname = obj.__module__, obj.__qualname__
    parts = module.split(".")
    for n in range(1, len(parts)):
        path = ".".join([*parts[:n], qualname])
        try:
            if locate(path) is obj:
                return path
        except ImportError:
            continue
    return f"{module}.{qualname}"


def _run_dir(subfolder: str, *, _root_) -> str | None:
    """``${softlabelseg.run_dir:inference}`` in a recipe: ``<train.output_dir>/inference``, or None where the
    config has no ``train.output_dir`` (a data recipe loaded alone). Registered on import, which every
    recipe does (``from softlabelseg.config import ...``), so detectron2's loader resolves it too."""
    out = OmegaConf.select(_root_, "train.output_dir", default=None)
    return os.path.join(out, subfolder) if out else None


if not OmegaConf.has_resolver("softlabelseg.run_dir"):
    OmegaConf.register_new_resolver("softlabelseg.run_dir", _run_dir)


# ---- running recipe files -----------------------------------------------------------------------------


def _config_value(value: Any) -> Any:
    return _node(value) if isinstance(value, dict) else value


def _run_recipe(path: str) -> types.ModuleType:
    """Executes the recipe at ``path`` and returns it as a module; its public dicts become DictConfigs."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    code = compile(source, path, "exec")  # a SyntaxError names the file and line
    module = types.ModuleType(f"recipe:{os.path.splitext(os.path.basename(path))[0]}")
    scope = dict(vars(builtins))
    scope["__import__"] = _importer_for(os.path.dirname(path))
    module.__dict__.update(__file__=path, __builtins__=scope)
    exec(code, module.__dict__)
    for name, value in list(vars(module).items()):
        if not name.startswith("_"):
            setattr(module, name, _config_value(value))
    return module


def _importer_for(folder: str):
    """``__import__`` for recipes in ``folder``: relative imports load recipe files, others are normal."""

    def recipe_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            return builtins.__import__(name, globals, locals, fromlist, level)
        base = folder
        for _ in range(level - 1):
            base = os.path.dirname(base)
        target = os.path.join(base, *[p for p in name.split(".") if p])
        where = f"{'.' * level}{name} (from {folder})"
        if os.path.isfile(target + ".py"):
            module = _run_recipe(target + ".py")
            for item in fromlist or ():
                if not hasattr(module, item):
                    raise ImportError(f"Recipe {target}.py defines no {item!r} (import {where})")
            return module
        if os.path.isdir(target):  # ``from ..common import train``: each name is a file in the folder
            package = types.ModuleType(os.path.basename(target))
            for item in fromlist or ():
                file = os.path.join(target, item + ".py")
                if not os.path.isfile(file):
                    raise ImportError(f"Cannot import {item!r} from {where}: {file} does not exist")
                setattr(package, item, _run_recipe(file))
            return package
        raise ImportError(
            f"Cannot import {where}: neither {target}.py nor a folder {target} exists. Relative imports in "
            "recipes name files relative to the importing recipe's folder."
        )

    return recipe_import


# ---- YAML ---------------------------------------------------------------------------------------------


def _yaml_ready(value: Any, key: str, lossy: list[str]) -> Any:
    """Plain YAML data for ``value``; keys whose values cannot round-trip are appended to ``lossy``."""
    if isinstance(value, dict):
        return {str(k): _yaml_ready(v, f"{key}.{k}" if key else str(k), lossy) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_ready(v, f"{key}.{i}" if key else str(i), lossy) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    lossy.append(key)
    if inspect.isclass(value) or inspect.isroutine(value):
        try:
            path = dotted_name(value)
            if locate(path) is value:
                return path  # readable, but a plain string when loaded back
        except (AttributeError, ImportError):
            pass
    return f"<unserializable: {value!r}>"


def _targets_as_paths(cfg: Any) -> None:
    """In place: callable ``_target_`` values (and the target of a ``deferred`` node) become dotted paths,
    which ``instantiate`` locates again, so they round-trip through YAML."""
    if isinstance(cfg, DictConfig):
        keys = ["_target_", "target"] if cfg.get("_target_") is deferred else ["_target_"]
        for k in keys:
            value = cfg.get(k)
            if value is not None and not isinstance(value, str) and callable(value):
                try:
                    cfg[k] = dotted_name(value)
                except AttributeError:
                    pass
        for k in cfg.keys():
            _targets_as_paths(cfg._get_node(k))
    elif isinstance(cfg, ListConfig):
        for i in range(len(cfg)):
            _targets_as_paths(cfg._get_node(i))


class LazyConfig:
    """Load, override and save recipes (``.py`` or ``.yaml``)."""

    @staticmethod
    def load(filename: str, keys: None | str | Sequence[str] = None):
        """The config in ``filename``: a DictConfig of its top-level config objects, or with ``keys`` the
        one named object (a str) or a tuple of them."""
        filename = os.path.abspath(os.fspath(filename))
        ext = os.path.splitext(filename)[1]
        if ext not in (".py", ".yaml", ".yml"):
            raise ValueError(f"Config file {filename} must be a .py, .yaml or .yml file.")
        if not os.path.isfile(filename):
            raise FileNotFoundError(f"Config file {filename} does not exist.")
        if ext == ".py":
            found = {k: v for k, v in vars(_run_recipe(filename)).items() if not k.startswith("_")}
        else:
            with open(filename, encoding="utf-8") as f:
                found = OmegaConf.create(yaml.safe_load(f) or {}, flags={"allow_objects": True})
        if keys is not None:
            wanted = [keys] if isinstance(keys, str) else list(keys)
            missing = [k for k in wanted if k not in found]
            if missing:
                raise KeyError(f"Config file {filename} does not define {missing}.")
            picked = tuple(_config_value(found[k]) for k in wanted)
            return picked[0] if isinstance(keys, str) else picked
        if ext == ".py":
            return _node({k: v for k, v in found.items() if isinstance(v, _CONFIG_TYPES)})
        return found

    @staticmethod
    def load_rel(filename: str, keys: None | str | Sequence[str] = None):
        """``load`` with ``filename`` relative to the recipe calling it (for use inside recipes)."""
        caller = inspect.currentframe().f_back.f_globals.get("__file__")
        if not caller:
            raise RuntimeError("LazyConfig.load_rel must be called from a recipe; use LazyConfig.load.")
        return LazyConfig.load(os.path.join(os.path.dirname(caller), filename), keys)

    @staticmethod
    def save(cfg, filename: str, resolve: bool = False) -> None:
        """Writes ``cfg`` to ``filename`` as YAML, interpolations kept as written unless ``resolve=True``.

        Kept, as detectron2 keeps them, so that a saved run config reloaded with overrides stays coherent:
        ``train.output_dir=...`` moves the evaluation folder, ``dataloader.test.dataset=...`` renames the
        evaluator's dataset, and ``dataloader.train.mapper.factor=...`` reaches the test mapper.

        Callable targets are written as dotted paths. Other values YAML cannot hold (objects, lambdas,
        functions outside ``_target_``) are written as readable strings and their keys are named in a
        warning: the file loads, but those entries come back as strings.
        """
        cfg = OmegaConf.create(cfg, flags={"allow_objects": True}) if isinstance(cfg, dict) else cfg
        try:  # work on a copy; keep interpolations so ``resolve=False`` can write them
            cfg = _node(OmegaConf.to_container(cfg, resolve=False))
        except Exception:
            pass
        _targets_as_paths(cfg)
        try:
            data = OmegaConf.to_container(cfg, resolve=resolve)
        except Exception as e:
            logger.warning("Interpolations in the config do not resolve (%s); saved as written.", e)
            data = OmegaConf.to_container(cfg, resolve=False)
        lossy: list[str] = []
        data = _yaml_ready(data, "", lossy)
        if lossy:
            logger.warning(
                "%s: the values of %s cannot be written as YAML; they are saved as strings.",
                filename, ", ".join(lossy),
            )
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        with open(filename, "w", encoding="utf-8") as f:
            yaml.safe_dump(data, f, default_flow_style=None, allow_unicode=True, width=9999, sort_keys=False)

    @staticmethod
    def apply_overrides(cfg, overrides: Sequence[str]):
        """Applies hydra-syntax ``key=value`` overrides in place and returns ``cfg``
        (see :func:`softlabelseg.config.overrides.apply_overrides`)."""
        return apply_overrides(cfg, overrides)
