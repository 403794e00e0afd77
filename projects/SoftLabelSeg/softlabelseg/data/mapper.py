"""SoftLabelDatasetMapper: record -> model input dict, with one geometry for the image and its label.

Training: decode -> random geometry (training factor x random scale, crop, flip) -> image resized with
``image_mode`` through ``softlabel_ops.resize_image``; label resampled with the SAME mode and window by
``softlabel_ops.soft_resize`` (dense or sparse soft labels) or ``hard_resize`` (the nearest baselines)
-> photometric jitter on the image only.

Label modes: "soft" / "soft_sparse" (the method); "nearest", the fair baseline: nearest neighbour on the
cell centres the image filter samples (torch nearest-exact, OpenCV INTER_NEAREST_EXACT, Pillow NEAREST);
"nearest_topleft": the top-left corner of each cell (torch 'nearest', OpenCV INTER_NEAREST, as
MMSegmentation and torchvision resize masks), off the image grid by (1/f - 1) / 2 input pixels at factor f;
"full_res": no label down-sampling at all, the label at 1/factor x the image grid (the original pixels when
the random scale is 1), for supervision of up-sampled logits at full resolution.

Output (training): ``image`` uint8 (3, h, w) RGB; ``sem_seg`` DenseSoftLabel (C, h, w) / SparseSoftLabel
(K, h, w) / int64 (h, w) (``full_res``: int64 (h / f, w / f)); ``height``, ``width`` (of the original
record), ``file_name``, ``image_id``.
Output (eval): ``image`` at the test factor; ``sem_seg`` the full-resolution int64 (H, W) label.
"""
from __future__ import annotations

import numpy as np
import torch

import softlabel_ops
from softlabel_ops.modes import DEFAULT_MODE

from .decode import BadSampleError, read_image, read_sem_seg
from .label_targets import LABEL_MODE_SPECS, LABEL_MODES
from .transforms import PhotometricDistortion, crop_pad_image, sample_geometry, scaled_size

__all__ = ["LABEL_MODES", "SoftLabelDatasetMapper"]


class SoftLabelDatasetMapper:
    """Callable ``mapper(record, rng=None) -> dict`` (detectron2 shape).

    Args:
        is_train: training (random geometry, soft/hard targets at the training grid) or evaluation.
        num_classes: number of train ids; label values must be < num_classes or ``ignore_value``.
        factor: training-resolution factor relative to the full resolution (paper: 1/8, 1/4, 1/2).
        crop_size: (h, w) crop on the training grid; a float c crops ``c`` x the image at ``factor``
            (1.0 = the paper's setting: the crop is the whole image at the training resolution); None
            keeps the whole rescaled map.
        scale_range: uniform random rescale range on top of ``factor`` (paper: (0.5, 2.0)).
        cat_max_ratio: re-draw the crop (up to 10 times) while one class covers more than this share of
            the crop's valid pixels, judged on the argmax of the (soft) label; 1.0 disables it.
        flip_prob: horizontal flip probability.
        image_mode, align_corners, antialias: the resampling filter (``softlabel_ops`` mode string);
            the label uses the same one.
        label_filter: soft label modes only: resample the one-hot label with this mode string instead of
            ``image_mode`` (same corner and antialias settings). An ablation that departs from the
            method's same-filter rule, e.g. area labels under a bilinear image; None (default) keeps it.
        label_mode: "soft" (DenseSoftLabel), "soft_sparse" (SparseSoftLabel, ``top_k`` caps K),
            "nearest" (int64 labels, the image library's nearest neighbour on the image's cell centres),
            "nearest_topleft" (the same library's top-left nearest) or "full_res" (int64 labels at
            1 / ``factor`` x the training grid); see the module docstring.
        clamp: clamp negative-lobe (bicubic) soft labels; see ``softlabel_ops.soft_resize``.
        photometric: jitter the training image (brightness, contrast, saturation, hue).
        pad_value: image value where the crop extends past the rescaled image (label: ignore).
        test_factor: scale of the evaluation image (default: ``factor``).
        convert_to_rgb: convert grayscale / RGBA / palette images (counted in the log) instead of raising.
        seed: seed of the mapper's own generator, used when ``__call__`` gets no ``rng``.
    """

    def __init__(self, is_train: bool = True, *, num_classes: int, factor: float = 1.0,
                 crop_size: tuple[int, int] | float | None = None, scale_range=(0.5, 2.0),
                 cat_max_ratio: float = 1.0, flip_prob: float = 0.5, image_mode: str = DEFAULT_MODE,
                 align_corners: bool = False, antialias: bool = False, label_mode: str = "soft",
                 top_k: int | None = None, clamp: bool = False, photometric: bool = True, pad_value=0,
                 ignore_value: int = 255, test_factor: float | None = None, convert_to_rgb: bool = False,
                 seed: int | None = None, label_filter: str | None = None):
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
        softlabel_ops.modes.parse_mode(image_mode, align_corners, antialias)  # fail early on a bad mode
        if label_filter is not None:
            if LABEL_MODE_SPECS[label_mode].grid is not None:
                raise ValueError(f"label_filter={label_filter!r} applies to soft labels only, but label_mode "
                                 f"is {label_mode!r}; unset label_filter or use label_mode='soft'")
            softlabel_ops.modes.parse_mode(label_filter, align_corners, antialias)
        if not 0 < float(factor) <= 8:
            raise ValueError(f"factor must be in (0, 8], got {factor}")
        self.is_train, self.num_classes, self.factor = is_train, int(num_classes), float(factor)
        if crop_size is None or isinstance(crop_size, (int, float)):
            self.crop_size = None if crop_size is None else float(crop_size)
        else:
            self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.cat_max_ratio, self.flip_prob = float(cat_max_ratio), float(flip_prob)
        self.mode_kw = dict(mode=image_mode, align_corners=align_corners, antialias=antialias)
        # soft labels: the image's filter unless label_filter names another (built once, used every sample)
        self.label_kw = dict(self.mode_kw, mode=label_filter or image_mode)
        self.label_mode, self.top_k, self.clamp = label_mode, top_k, clamp
        self._label_spec = LABEL_MODE_SPECS[label_mode]
        # full_res: the target grid is this integer multiple of the training grid
        self.full_res_ratio = max(1, int(round(1.0 / self.factor)))
        if self._label_spec.full_res and abs(self.full_res_ratio * self.factor - 1.0) > 1e-6:
            raise ValueError(f"label_mode='full_res' needs factor = 1/n for an integer n, got {factor}")
        self.photometric = PhotometricDistortion() if photometric else None
        self.pad_value, self.ignore_value = pad_value, int(ignore_value)
        self.test_factor = self.factor if test_factor is None else float(test_factor)
        self.convert_to_rgb = convert_to_rgb
        self._rng = np.random.default_rng(seed)

    # -- decoding ------------------------------------------------------------------------------------
    def read(self, record: dict) -> tuple[np.ndarray, np.ndarray]:
        """Decoded (image uint8 (H, W, 3), label uint8 (H, W) train ids) with size checks."""
        image = read_image(record["file_name"], convert_to_rgb=self.convert_to_rgb)
        label = read_sem_seg(record, self.num_classes, self.ignore_value)
        hw = f"{image.shape[1]}x{image.shape[0]} (WxH)"
        if image.shape[:2] != label.shape:
            raise BadSampleError(record["file_name"], f"image is {hw} but its label "
                                 f"{record['sem_seg_file_name']} is {label.shape[1]}x{label.shape[0]}")
        expect = (record.get("height"), record.get("width"))
        if None not in expect and tuple(expect) != image.shape[:2]:
            raise BadSampleError(record["file_name"], f"image is {hw} but its record says "
                                 f"{expect[1]}x{expect[0]}; re-list the dataset")
        return image, label

    # -- label resampling ----------------------------------------------------------------------------
    def resample_label(self, label: np.ndarray, size, window):
        """The label on ``window`` of the grid resized to ``size``, in ``label_mode``."""
        spec = self._label_spec
        if spec.grid is not None:
            if spec.full_res:
                r = self.full_res_ratio
                size = (size[0] * r, size[1] * r)
                window = tuple(v * r for v in window)
            return softlabel_ops.hard_resize(label, size, self.mode_kw["mode"], crop=window,
                                             grid=spec.grid,
                                             ignore_value=self.ignore_value)
        return softlabel_ops.soft_resize(label, self.num_classes, size=size, **self.label_kw,
                                         ignore_value=self.ignore_value, crop=window,
                                         sparse=spec.sparse, top_k=self.top_k,
                                         clamp=self.clamp)

    def _hard(self, target) -> torch.Tensor:
        if isinstance(target, torch.Tensor):
            return target
        return target.argmax(self.ignore_value, min_valid=1e-6)

    def _crop_ok(self, target) -> bool:
        """mmseg's rule: more than one class, and none above ``cat_max_ratio`` of the valid pixels."""
        hard = self._hard(target)
        counts = torch.bincount(hard[hard != self.ignore_value].flatten(), minlength=self.num_classes)
        return int((counts > 0).sum()) > 1 and int(counts.max()) < self.cat_max_ratio * int(counts.sum())

    def test_input(self, image: np.ndarray) -> dict:
        """The model input of an image at test time, with no label needed (``tools/demo.py``):
        ``{"image": uint8 (3, h, w) at the test factor, "height", "width": the image's own size}``."""
        out = {"height": image.shape[0], "width": image.shape[1]}
        size = scaled_size(image.shape[:2], self.test_factor)
        if size != image.shape[:2]:
            image = softlabel_ops.resize_image(image, size, **self.mode_kw)
        out["image"] = _chw(image)
        return out

    # -- call ----------------------------------------------------------------------------------------
    def __call__(self, record: dict, rng: np.random.Generator | None = None) -> dict:
        rng = self._rng if rng is None else rng
        image, label = self.read(record)
        out = {"file_name": record["file_name"], "height": image.shape[0], "width": image.shape[1]}
        if "image_id" in record:
            out["image_id"] = record["image_id"]
        if not self.is_train:
            out.update(self.test_input(image))
            out["sem_seg"] = torch.from_numpy(label.astype(np.int64))
            return out
        crop = self.crop_size
        if isinstance(crop, float):
            crop = scaled_size(image.shape[:2], self.factor * crop)
        for _attempt in range(10 if self.cat_max_ratio < 1.0 else 1):
            geo = sample_geometry(rng, image.shape[:2], self.factor, self.scale_range, crop, self.flip_prob)
            target = self.resample_label(label, geo.size, geo.window)
            if self.cat_max_ratio >= 1.0 or self._crop_ok(target):
                break
        if geo.size != image.shape[:2]:
            image = softlabel_ops.resize_image(image, geo.size, **self.mode_kw)
        image = crop_pad_image(image, geo.window, self.pad_value)
        if geo.flip:
            image = image[:, ::-1]
            target = target.flip(-1) if isinstance(target, torch.Tensor) else target.hflip()
        if self.photometric is not None:
            image = self.photometric(image, rng)
        out["image"] = _chw(image)
        out["sem_seg"] = target
        return out


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
