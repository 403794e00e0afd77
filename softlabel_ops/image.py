"""resize_image: the image half of paired resampling, done by each mode's own library with the filter its
registry entry names (ModeSpec.image)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .modes import DEFAULT_MODE, parse_mode

__all__ = ["resize_image"]


def _cast_like(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(dtype)
    return out.astype(dtype, copy=False)


def _torch_resize(img: np.ndarray, size, m) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(img, np.float32)).permute(2, 0, 1)[None]
    kw = dict(align_corners=m.align_corners, antialias=m.antialias) if m.spec.torch_flags else {}
    return F.interpolate(x, size=tuple(size), mode=m.spec.image, **kw)[0].permute(1, 2, 0).numpy()


def _cv2_resize(img: np.ndarray, size, m) -> np.ndarray:
    import cv2

    src = img if img.dtype in (np.uint8, np.uint16, np.float32, np.float64) else img.astype(np.float32)
    flag = getattr(cv2, m.spec.image)
    outs = []
    for c in range(0, src.shape[2], 4):  # some OpenCV filters take at most 4 channels per call
        part = np.ascontiguousarray(src[..., c: c + 4])
        out = cv2.resize(part, (int(size[1]), int(size[0])), interpolation=flag)
        outs.append(out if out.ndim == 3 else out[..., None])
    return np.concatenate(outs, -1)


def _pil_resize(img: np.ndarray, size, m) -> np.ndarray:
    from PIL import Image

    flag = getattr(Image.Resampling, m.spec.image)
    wh = (int(size[1]), int(size[0]))
    if img.dtype == np.uint8 and img.shape[2] in (1, 3, 4):
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[img.shape[2]]
        if mode == "RGBA":  # Pillow premultiplies alpha for RGBA: resize channels independently instead
            return np.stack([np.asarray(Image.fromarray(img[..., c]).resize(wh, flag)) for c in range(4)], -1)
        arr = img[..., 0] if mode == "L" else img
        out = np.asarray(Image.fromarray(arr, mode).resize(wh, flag))
        return out if out.ndim == 3 else out[..., None]
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c], np.float32), "F").resize(wh, flag))
              for c in range(img.shape[2])]
    return np.stack(planes, -1)


_RESIZERS = {"torch": _torch_resize, "cv2": _cv2_resize, "pil": _pil_resize}


def resize_image(image, size, mode: str = DEFAULT_MODE, *, align_corners: bool = False,
                 antialias: bool = False):
    """Resizes an image with the library and filter named by `mode` (the filter soft_resize reproduces).

    image: numpy (H, W, C) or (H, W), uint8 or float; or torch (C, H, W). size: (h, w).
    Returns the same container and layout; integer images are rounded and clipped back to their dtype.
    uint8 images go through each library's own 8-bit path (OpenCV/Pillow use fixed-point weights).
    """
    m = parse_mode(mode, align_corners, antialias)
    is_torch = isinstance(image, torch.Tensor)
    if is_torch:
        device, tdtype = image.device, image.dtype
        arr = image.detach().cpu()
        arr = (arr.permute(1, 2, 0) if arr.dim() == 3 else arr).numpy()
    else:
        arr = np.asarray(image)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"image must be (H, W, C), (H, W) or a (C, H, W) tensor, got shape {arr.shape}")
    dtype = arr.dtype
    out = _RESIZERS[m.library](arr, size, m)
    out = _cast_like(np.asarray(out), dtype)
    if squeeze:
        out = out[..., 0]
    if is_torch:
        t = torch.from_numpy(np.ascontiguousarray(out))
        t = t.permute(2, 0, 1) if t.dim() == 3 else t
        return t.to(device=device, dtype=tdtype).contiguous()
    return out
