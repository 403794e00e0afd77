"""From a LazyConfig recipe (and checkpoint) to the model and the metadata an export carries."""

from __future__ import annotations

import contextlib
import os

from softlabelseg.checkpoint_io import resolution_factor
from torch import nn

from softlabel_ops.modes import DEFAULT_MODE

from .checkpoint import read_for_export
from .metadata import ExportMetadata
from .wrapper import normalisation_of


def load_recipe(config_file: str, overrides=()):
    """``LazyConfig.load`` + ``apply_overrides`` (``key=value`` strings)."""
    from softlabelseg.config import LazyConfig

    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"recipe {config_file!r} does not exist")
    cfg = LazyConfig.load(config_file)
    return LazyConfig.apply_overrides(cfg, list(overrides)) if overrides else cfg


def load_model(cfg, checkpoint: str | None = None, config_name: str = "the recipe") -> tuple[nn.Module, dict]:
    """(``cfg.model`` in eval mode, the checkpoint's other entries): ``checkpoint`` is read once and loaded
    strictly when given (``{}`` without one)."""
    from softlabelseg.config import instantiate
    from softlabelseg.modeling.pretrained import skip_initial_weights

    # with trained weights to load, the backbone's ImageNet weights are not read (nor need installing)
    with skip_initial_weights() if checkpoint else contextlib.nullcontext():
        model = instantiate(cfg.model)
    rest = {}
    if checkpoint:
        # the typed schema's reader (its default without a train section); a recipe imports the engine anyway
        from softlabelseg.engine.train_config import train_value

        limit = train_value(cfg, "divergence.max_abs_weight")
        rest = read_for_export(model, checkpoint, config_name, max_abs_weight=limit)
    return model.eval(), rest


def build_model(cfg, checkpoint: str | None = None, config_name: str = "the recipe") -> nn.Module:
    """Instantiate ``cfg.model`` in eval mode; load ``checkpoint`` strictly when given."""
    return load_model(cfg, checkpoint, config_name)[0]


def _test_mapper(cfg):
    try:
        return cfg.dataloader.test.mapper
    except (AttributeError, KeyError):
        return None


def recipe_resolution(cfg) -> dict:
    """The test-time image geometry a recipe trains for: factor, filter, dataset and its full size."""
    mapper = _test_mapper(cfg)
    get = (lambda key, default: mapper.get(key, default)) if mapper is not None else (lambda k, d: d)
    factor = resolution_factor(cfg)  # the rule a checkpoint's meta was saved with
    dataset = cfg.dataloader.test.get("dataset") if mapper is not None else None
    full = None
    if isinstance(dataset, str):
        from softlabelseg.data import MetadataCatalog

        full = MetadataCatalog.get(dataset).get("evaluation_resolution")
    return dict(
        factor=factor,
        image_mode=str(get("image_mode", DEFAULT_MODE)),
        antialias=bool(get("antialias", False)),
        dataset=dataset if isinstance(dataset, str) else None,
        full_size=tuple(full) if full else None,
    )


def default_input_size(cfg) -> tuple[int, int] | None:
    """Model input (h, w) for the dataset's evaluation resolution at the recipe's factor, if fixed."""
    res = recipe_resolution(cfg)
    if res["full_size"] is None:
        return None
    h, w = res["full_size"]
    f = res["factor"]
    return max(int(round(h * f)), 1), max(int(round(w * f)), 1)


def recipe_metadata(cfg, model: nn.Module, model_name: str | None = None) -> ExportMetadata:
    """Class names / colours / ignore value from the test dataset's catalog entry, the resolution
    factor and image filter from the test mapper, normalisation from the model."""
    res = recipe_resolution(cfg)
    num_classes = int(getattr(model, "num_classes", 0) or cfg.model.get("num_classes", 0))
    names, colors, ignore = None, None, 255
    if res["dataset"]:
        from softlabelseg.data import MetadataCatalog

        meta = MetadataCatalog.get(res["dataset"])
        names, colors = meta.get("stuff_classes"), meta.get("stuff_colors")
        ignore = int(meta.get("ignore_label", 255))
    if not names or len(names) != num_classes:
        names = [f"class{i}" for i in range(num_classes)]
    if not colors or len(colors) != len(names):
        colors = [[(37 * i) % 256, (91 * i) % 256, (53 * i + 80) % 256] for i in range(len(names))]
    norm = normalisation_of(model) or ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    cal = getattr(model, "calibration", None) if getattr(model, "offsets_active", False) else None
    return ExportMetadata(
        class_offsets=[round(float(b), 6) for b in model.class_offsets] if cal is not None else None,
        calibration=(f"{cal.get('method', 'offsets')} on {cal.get('fit_images', '?')} training images of "
                     f"{cal.get('fit_dataset', '?')}") if cal is not None else None,
        class_names=[str(n) for n in names],
        class_colors=[[int(c) for c in rgb] for rgb in colors],
        resolution_factor=res["factor"],
        pixel_mean=norm[0],
        pixel_std=norm[1],
        ignore_value=ignore,
        image_resize=res["image_mode"],
        image_antialias=res["antialias"],
        model_name=model_name,
    )
