"""Framework-free soft-label resampling, containers and losses (torch + numpy only).

soft_resize turns an integer label map into per-pixel class distributions with the exact geometry
of an image filter (torch / OpenCV / Pillow), so images and labels are resized alike.

Names are imported on first use, so the numpy-only modules (modes, filters, taps) serve the ONNX
runner without importing torch.
"""
import importlib

_EXPORTS = {
    "soft_resize": "resample", "hard_resize": "resample", "resize_image": "image",
    "DenseSoftLabel": "containers", "SparseSoftLabel": "containers", "soft_kl_loss": "loss",
    "MODES": "modes", "NEAREST_MODES": "modes", "NEAREST_GRIDS": "modes", "NEGATIVE_LOBE_MODES": "modes",
    "nearest_of": "modes", "nearest_grid": "modes", "DEFAULT_MODE": "modes",
    "class_share": "stats", "soft_class_share": "stats", "share_change": "stats",
    "multi_class_fraction": "stats", "mean_entropy": "stats", "label_statistics": "stats",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    """The public names above, and submodules (``softlabel_ops.modes``), imported when first asked for."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
