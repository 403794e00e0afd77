"""The ``train.*`` keys: one typed schema with defaults and docs, read by recipes, checks, engines and docs.

Recipes keep ``train`` a plain dict (so detectron2's LazyConfig loads them unchanged):
``configs/common/train.py`` builds it with :func:`train_defaults`. :func:`check_train_config` refuses an
unknown key or a value of the wrong type or range by name, before a run writes anything;
:func:`train_value` reads a key, falling back to the schema's default where a config leaves it out. String
keys with allowed values (``device``, ``amp.precision``) are refused outside them, whatever the device.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field

from omegaconf import OmegaConf

__all__ = ["ConfigValueError", "TrainConfig", "check_choice", "check_train_config", "train_defaults",
           "train_keys", "train_key_docs", "train_value"]


class ConfigValueError(ValueError):
    """A config key holds a value of the wrong type or range, or is not a key of the schema."""


def _key(default, doc: str, minimum: float | None = None, positive: bool = False,
         choices: tuple[str, ...] | None = None, **kw):
    """A schema field; ``choices``: its allowed strings (``<index>``: a number, as in ``cuda:<index>``)."""
    return field(default=default, metadata={"doc": doc, "minimum": minimum, "positive": positive,
                                            "choices": choices}, **kw)


def _dict_key(factory, doc: str):
    return field(default_factory=factory, metadata={"doc": doc})


@dataclass
class AmpConfig:
    enabled: bool = _key(False, "mixed precision (CUDA only; ignored with a warning on CPU)")
    precision: str = _key("bf16", '"bf16", or "fp16" (adds a GradScaler)', choices=("bf16", "fp16"))


@dataclass
class DDPConfig:
    broadcast_buffers: bool = _key(False, "DistributedDataParallel's broadcast_buffers")
    find_unused_parameters: bool = _key(False, "DistributedDataParallel's find_unused_parameters")
    fp16_compression: bool = _key(False, "compress gradients to fp16 for the all-reduce")


@dataclass
class CheckpointerConfig:
    period: int = _key(5000, "write model_<iter>.pth every this many iterations (0: only model_final.pth)",
                       minimum=0)
    max_to_keep: int | None = _key(5, "keep the newest this many periodic checkpoints (None: all)", minimum=1)


@dataclass
class DivergenceConfig:
    max_loss: float | None = _key(
        1e3, "stop when the training loss exceeds this (a run that explodes), before its weights are saved; "
        "None: only inf/NaN stop", positive=True)
    max_loss_ratio: float | None = _key(
        20.0, "stop when the loss exceeds this multiple of its median over the last 50 iterations and the "
        "run's starting loss (an explosion starting); None: no relative check", positive=True)
    max_start_loss_ratio: float | None = _key(
        4.0, "stop when the run's starting loss (the median of its first 5) exceeds this multiple of "
        "ln(model.num_classes), the loss of a uniform guess: a run that starts diverged; None: no check",
        positive=True)
    max_abs_weight: float | None = _key(
        1e6, "a checkpoint whose parameters (or BatchNorm running variances) exceed this in magnitude is "
        "diverged: never saved, never resumed from; None: only inf/NaN count", positive=True)


@dataclass
class CalibrationConfig:
    enabled: bool = _key(False, "after training, fit per-class logit offsets (prior matching) on training "
                                "images; the checkpoint, evaluation and exports carry them")
    fit_images: int = _key(48, "training images the offsets are fitted on (evenly spaced over the split)",
                           minimum=4)
    iters: int = _key(12, "fixed-point steps of the fit", minimum=1)


@dataclass
class TestConfig:
    flip: bool = _key(False, "test-time horizontal flip")
    scales: list[float] = field(default_factory=lambda: [1.0], metadata={
        "doc": "test-time scales, relative to the evaluation image ([1.0]: the image as it is)"})
    sliding_window: dict | None = _key(
        None, '{"crop": [h, w], "stride": [h, w]} in test-image pixels, or None (whole image)')


@dataclass
class TrainConfig:
    """Every ``train.*`` key (detectron2's names where detectron2 has the key)."""

    output_dir: str = _key("./output", "run folder: config, logs, metrics, checkpoints, inference/")
    init_checkpoint: str = _key("", "initial weights (.pth or .safetensors); --resume continues a run")
    max_iter: int = _key(80000, "training iterations", minimum=1)
    amp: AmpConfig = _dict_key(AmpConfig, "mixed precision")
    ddp: DDPConfig = _dict_key(DDPConfig, "DistributedDataParallel options")
    checkpointer: CheckpointerConfig = _dict_key(CheckpointerConfig, "periodic checkpoints")
    eval_period: int = _key(5000, "evaluate every this many iterations (0: only at the end)", minimum=0)
    log_period: int = _key(20, "write metrics every this many iterations", minimum=1)
    device: str = _key("auto", '"cuda", "cpu" or "auto" (cuda when available)',
                       choices=("auto", "cpu", "cuda", "cuda:<index>"))
    seed: int = _key(0, "python/numpy/torch seed (+ rank); negative: drawn at random and logged")
    grad_accum_steps: int = _key(1, "loader batches per optimizer step", minimum=1)
    clip_grad_norm: float | None = _key(None, "largest global gradient norm, or None (no clipping)",
                                        positive=True)
    cudnn_benchmark: bool = _key(False, "torch.backends.cudnn.benchmark")
    cpu_threads: int | None = _key(
        None, "torch intra-op threads when training on the CPU; None: the usable cores minus the training "
        "loader's workers (unless OMP_NUM_THREADS is set), so that loading overlaps without oversubscribing",
        minimum=1)
    divergence: DivergenceConfig = _dict_key(DivergenceConfig, "when a run counts as diverged")
    calibration: CalibrationConfig = _dict_key(CalibrationConfig, "a decision rule fitted after training")
    test: TestConfig = _dict_key(TestConfig, "evaluation-time wrappers (flip, scales, sliding window)")


def train_defaults(**overrides) -> dict:
    """The schema's defaults as the plain nested dict a recipe assigns to ``train`` (``overrides`` replace
    top-level keys, e.g. ``device``)."""
    out = dataclasses.asdict(TrainConfig())
    unknown = set(overrides) - set(out)
    if unknown:
        raise ConfigValueError(f"train_defaults: unknown key(s) {sorted(unknown)}")
    out.update(overrides)
    return out


def _fields(cls, prefix: str = ""):
    """(dotted key, dataclass field, its type) of every leaf of the schema; nested configs recurse."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, tp = prefix + f.name, hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _fields(tp, key + ".")
        else:
            yield key, f, tp


_LEAVES = {key: (f, tp) for key, f, tp in _fields(TrainConfig)}


def train_keys() -> list[str]:
    """Every leaf key, dotted (``checkpointer.period``, ...)."""
    return list(_LEAVES)


def train_key_docs() -> list[tuple[str, str, str]]:
    """(``train.<key>``, default as text, doc) of every leaf key, in schema order: the docs' key table."""
    defaults = train_defaults()
    rows = []
    for key, (f, _) in _LEAVES.items():
        value = OmegaConf.select(OmegaConf.create(defaults), key)
        rows.append((f"train.{key}", repr(value), f.metadata.get("doc", "")))
    return rows


_ABSENT = object()


def train_value(cfg, key: str):
    """``train.<key>`` of ``cfg`` (a whole config; nested groups come back as plain containers), or the
    schema's default when the config does not have the key."""
    value = OmegaConf.select(cfg, f"train.{key}", default=_ABSENT)
    if value is _ABSENT:
        value = OmegaConf.select(OmegaConf.create(train_defaults()), key, default=_ABSENT)
        if value is _ABSENT:
            raise KeyError(f"train.{key} is not a key of the train schema")
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _type_ok(value, tp) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is list or tp is list:
        return isinstance(value, (list, tuple)) and (not args or all(_type_ok(v, args[0]) for v in value))
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return True


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list",
          dict: "a mapping"}


def _describe(tp, minimum, positive) -> str:
    """'an integer >= 1 or None' and the like, for error messages."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    kinds = [_NAMES.get(typing.get_origin(a) or a, str(a)) for a in args if a is not type(None)]
    bound = (f" >= {minimum}" if minimum is not None else "") + (" > 0" if positive else "")
    return " or ".join(kinds) + bound + (" or None" if type(None) in args else "")


def _allowed(value: str, choices: tuple[str, ...]) -> bool:
    for choice in choices:
        head, index, _ = choice.partition("<index>")
        if value == choice or (index and value.startswith(head) and value[len(head):].isdigit()):
            return True
    return False


def check_choice(key: str, value) -> None:
    """Raises :class:`ConfigValueError` when the string key ``train.<key>`` (one with allowed values, such as
    ``device`` or ``amp.precision``) holds a value outside them, naming the key, the value and the choices."""
    f = _LEAVES[key][0]
    choices = f.metadata.get("choices")
    if choices and isinstance(value, str) and not _allowed(value, choices):
        raise ConfigValueError(
            f"train.{key}={value!r}: expected one of {', '.join(repr(c) for c in choices)} "
            f"({f.metadata.get('doc', '')}). Fix the recipe or override it, e.g. train.{key}={_example(f)}.")


def _leaves_of(node, prefix: str = ""):
    for k in node.keys():
        key = f"{prefix}{k}"
        child = node._get_node(k)
        if OmegaConf.is_dict(child) and key not in _LEAVES and not child._is_none():
            yield from _leaves_of(child, key + ".")
        else:
            yield key


def check_train_config(cfg, eval_only: bool = False) -> None:
    """Every ``train.*`` key of ``cfg`` is a schema key holding a value of its type and range; raises
    :class:`ConfigValueError` naming the key, what it expects and how to fix it. ``eval_only`` checks names
    only (a scoring run does not use the training keys' values)."""
    train = OmegaConf.select(cfg, "train", default=None)
    if train is None:
        raise ConfigValueError("the config has no train section; start from configs/common/train.py")
    unknown = [k for k in _leaves_of(train) if k not in _LEAVES]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(_LEAVES), n=1)
            hints.append(f"train.{k}" + (f" (did you mean train.{close[0]}?)" if close else ""))
        raise ConfigValueError(
            f"unknown key(s) {', '.join(hints)}: the train section takes "
            f"{', '.join('train.' + k for k in _LEAVES)}. Remove it (~train.<key>) or fix its name.")
    if eval_only:
        return
    for key, (f, tp) in _LEAVES.items():
        value = OmegaConf.select(cfg, f"train.{key}", default=_ABSENT)
        if value is _ABSENT:
            continue  # left out: the default applies
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        minimum, positive = f.metadata.get("minimum"), f.metadata.get("positive")
        ok = _type_ok(value, tp) and (value is None or (
            (minimum is None or value >= minimum) and (not positive or value > 0)))
        if not ok:
            need = _describe(tp, minimum, positive)
            raise ConfigValueError(
                f"train.{key}={value!r}: expected {need} ({f.metadata.get('doc', '')}). Fix the recipe or "
                f"override it, e.g. train.{key}={_example(f)}.")
        check_choice(key, value)


def _example(f) -> str:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if default is None:
        return "1.0" if f.metadata.get("positive") else "null"
    return repr(default)
