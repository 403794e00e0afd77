"""Command-line overrides (hydra grammar) with errors that name the mistyped key."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from .instantiate import signature_target

__all__ = ["apply_overrides"]


def apply_overrides(cfg, overrides: Sequence[str]):
    """Apply hydra-syntax command-line overrides to ``cfg`` in place and return it.

    ``a.b=1`` sets an existing key (or an argument the node's ``_target_`` accepts), ``+a.b=1``
    adds a new key, ``++a.b=1`` sets or adds, ``~a.b`` deletes. Values use hydra's grammar
    (``x=[1,2]``, ``x=null``, ``x='a b'``, ``x=${other.key}``).

    Raises:
        KeyError naming the key (with close matches) when a plain override's key does not exist.
        ValueError naming the override when it cannot be parsed.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for text in overrides:
        try:
            (o,) = parser.parse_overrides([text])
        except OverrideParseException as e:
            raise ValueError(f"Cannot parse override {text!r}: {e}") from None
        key = o.key_or_group
        _check_parents_are_configs(cfg, key)
        exists = _key_exists(cfg, key)
        if o.is_delete():
            if not exists:
                raise KeyError(f"Cannot delete {key!r}: {_missing_key_message(cfg, key)}")
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            del node[int(leaf) if isinstance(node, ListConfig) else leaf]
            continue
        value = o.value()
        if o.is_add() and exists:
            raise KeyError(f"Cannot add {key!r}: it already exists; use {key}=... to override it.")
        if not (o.is_add() or o.is_force_add() or exists or _target_accepts(cfg, key)):
            raise KeyError(
                f"Cannot override {key!r}: {_missing_key_message(cfg, key)} "
                f"To add a new key use +{key}=..."
            )
        OmegaConf.update(cfg, key, value, merge=True, force_add=True)
    return cfg


def _key_exists(cfg, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if isinstance(node, DictConfig):
            if part not in node:
                return False
            node = node._get_node(part)
        elif isinstance(node, ListConfig):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                return False
            node = node._get_node(int(part))
        else:
            return False
    return True


def _check_parents_are_configs(cfg, key: str) -> None:
    parts = key.split(".")
    for i in range(1, len(parts)):
        prefix = ".".join(parts[:i])
        if not _key_exists(cfg, prefix):
            return
        v = OmegaConf.select(cfg, prefix)
        if v is not None and not OmegaConf.is_config(v):
            raise KeyError(f"Cannot override {key!r}: {prefix!r} is a {type(v).__name__}, not a config node.")


def _target_accepts(cfg, key: str) -> bool:
    """True if ``key``'s parent node has a ``_target_`` whose signature accepts the leaf name.

    A target taking ``**kwargs`` accepts any name except a near miss of a named parameter or an existing
    key (``model_nam`` for ``model_name``): that is far more likely a typo than a pass-through argument.
    """
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    target = signature_target(node) if isinstance(node, DictConfig) else None
    if target is None:
        return False
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    if leaf in params:
        return True
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return False
    known = [n for n, p in params.items() if p.kind is not p.VAR_KEYWORD] + [str(k) for k in node.keys()]
    return not difflib.get_close_matches(leaf, known, n=1, cutoff=0.8)


def _all_keys(cfg, prefix: str = "") -> list[str]:
    out = []
    if isinstance(cfg, DictConfig):
        for k in cfg.keys():
            full = f"{prefix}.{k}" if prefix else str(k)
            out.append(full)
            out.extend(_all_keys(cfg._get_node(k), full))
    return out


def _missing_key_message(cfg, key: str) -> str:
    candidates = _all_keys(cfg)
    parent, _, _ = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else None
    target = signature_target(node) if isinstance(node, DictConfig) else None
    if target is not None:  # also the target's unset parameters
        try:
            candidates += [f"{parent}.{n}" for n, p in inspect.signature(target).parameters.items()
                           if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        except (TypeError, ValueError):
            pass
    candidates = sorted({c for c in candidates if not c.rpartition(".")[2].startswith("_")})
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"key {key!r} does not exist in the config.{hint}"
