"""SemanticSegmentor: the meta-architecture (detectron2's ``model(batched_inputs)`` contract).

Training: ``model(list[dict])`` -> ``{"loss_sem_seg": scalar}``; each dict has ``image`` (uint8 (3, h, w))
and ``sem_seg`` (a soft label ``(C|K, h_t, w_t)`` or int64 ``(h_t, w_t)`` aligned with the image).
Logits are upsampled bilinearly to the target grid; targets are never resampled again.
Eval: ``model(list[dict])`` -> ``[{"sem_seg": probs (C, height, width)}]`` at the record's size;
``predict_labels(list[dict])`` -> ``[{"sem_seg_labels": int64 (height, width)}]``, the same argmax with
memory that does not grow with C x height x width (what evaluation uses).

A decision rule fitted after training travels with the model: per-class logit offsets
(:meth:`SemanticSegmentor.set_class_offsets`, e.g. prior matching) are added to the head's logits in every
eval path (probabilities, top-1 labels, the exported graph), never in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbone import Backbone
from .layers import resize
from .losses import CrossEntropy, LossByTarget, SoftKL
from .top1 import fused_top1

__all__ = ["SemanticSegmentor"]


def _hw(target) -> tuple[int, int]:
    """(h, w) of an int64 label map or a soft-label container."""
    t = target if isinstance(target, Tensor) else target.valid
    return int(t.shape[-2]), int(t.shape[-1])


def _normalization(backbone, mean, std) -> tuple[list[float], list[float]]:
    """The model's (mean, std): the given ones, checked against what the backbone's weights expect."""
    expected = getattr(backbone, "normalization", None)
    if mean is None or std is None:
        if expected is None:
            raise ValueError(
                "model.pixel_mean/pixel_std are null but the backbone loads no pretrained weights that "
                "declare a normalisation; set both (RGB, 0..255)"
            )
        return [float(v) for v in expected[0]], [float(v) for v in expected[1]]
    def same(a, b) -> bool:
        return torch.allclose(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))

    if expected is not None and not (same(mean, expected[0]) and same(std, expected[1])):
        raise ValueError(
            f"model.pixel_mean/pixel_std {list(mean)}/{list(std)} differ from the {list(expected[0])}/"
            f"{list(expected[1])} the backbone's pretrained weights expect; set them to those values or null"
        )
    return [float(v) for v in mean], [float(v) for v in std]


class SemanticSegmentor(nn.Module):
    """Backbone + head with normalisation, padding, loss and full-resolution post-processing.

    Args:
        backbone: a ``Backbone`` (``forward(x) -> dict``, ``output_shape()``).
        head: an ``nn.Module`` taking the feature dict, or a callable ``head(input_shape=...)`` building one
            from ``backbone.output_shape()`` (a ``_partial_`` config node), so configs never repeat channels.
        pixel_mean, pixel_std: per-channel RGB statistics in 0..255; None takes the normalisation the
            backbone's pretrained weights declare (``backbone.normalization``); given values must agree.
        num_classes: number of classes C (targets are checked against it).
        ignore_value: label of ignored pixels in int64 targets (the padding of a batch's labels).
        size_divisibility: pad inputs to a multiple of this; None -> ``backbone.size_divisibility``.
        loss: an ``nn.Module`` called as ``loss(logits, target)`` (``modeling.losses``); None: KL-divergence
            for soft targets and cross-entropy for hard ones (:class:`LossByTarget`).
        multi_class, class_weights, loss_weight: the loss options of configs saved before ``loss`` existed;
            they build the default loss with those options (not allowed together with ``loss``).
    """

    def __init__(self, backbone: Backbone, head: nn.Module | Callable[..., nn.Module],
                 pixel_mean: Sequence[float] | None, pixel_std: Sequence[float] | None, num_classes: int,
                 ignore_value: int = 255, size_divisibility: int | None = None, loss: nn.Module | None = None,
                 multi_class: bool | None = None, class_weights: Sequence[float] | None = None,
                 loss_weight: float | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = head if isinstance(head, nn.Module) else head(input_shape=backbone.output_shape())
        self.num_classes, self.ignore_value = int(num_classes), int(ignore_value)
        if size_divisibility is None:
            size_divisibility = getattr(backbone, "size_divisibility", 32)
        self.size_divisibility = int(size_divisibility)
        pixel_mean, pixel_std = _normalization(backbone, pixel_mean, pixel_std)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)
        self.loss = _build_loss(loss, self.ignore_value, multi_class, class_weights, loss_weight)
        if hasattr(self.loss, "check_classes"):
            self.loss.check_classes(self.num_classes)
        # not in the state dict: checkpoints carry offsets as their own "calibration" entry
        self.register_buffer("class_offsets", torch.zeros(self.num_classes), persistent=False)
        self.calibration: dict | None = None  # how the offsets were fitted (None: no offsets)
        self.apply_offsets = True  # False serves the plain argmax of a calibrated model

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ---- tensor path (export-friendly) -------------------------------------------------------------
    def normalize(self, images: Tensor) -> Tensor:
        """uint8 or float (N, 3, H, W) in 0..255 -> normalised float32."""
        return (images.float() - self.pixel_mean) / self.pixel_std

    def _pad(self, x: Tensor) -> Tensor:
        d = self.size_divisibility
        return F.pad(x, (0, (-x.shape[-1]) % d, 0, (-x.shape[-2]) % d))  # no branch: export-friendly

    def forward_features(self, x: Tensor) -> Tensor:
        """Normalised, padded (N, 3, H, W) -> head logits (N, C, H / s, W / s); in eval mode with the class
        offsets added when the model carries them."""
        logits = self.head(self.backbone(x))
        return self._decide(logits) if not self.training else logits

    # ---- a decision rule fitted after training -------------------------------------------------------------
    @property
    def offsets_active(self) -> bool:
        """Whether eval outputs include class offsets (a Python bool: export traces a fixed graph)."""
        return self.calibration is not None and self.apply_offsets

    def _decide(self, logits: Tensor) -> Tensor:
        if not self.offsets_active:
            return logits
        return logits + self.class_offsets.to(logits.dtype).view(1, -1, 1, 1)

    def set_class_offsets(self, offsets, calibration: dict | None = None) -> None:
        """Per-class logit offsets (C,) added to the logits at evaluation and in exports; ``calibration``
        describes how they were fitted (saved with checkpoints). None removes them."""
        if offsets is None:
            self.class_offsets.zero_()
            self.calibration = None
            return
        offsets = torch.as_tensor(offsets, dtype=torch.float32).flatten()
        if offsets.numel() != self.num_classes or not bool(torch.isfinite(offsets).all()):
            raise ValueError(f"class offsets must be {self.num_classes} finite numbers, got "
                             f"{offsets.tolist()}")
        self.class_offsets.copy_(offsets.to(self.class_offsets.device))
        self.calibration = dict(calibration or {})

    def calibration_state(self) -> dict | None:
        """``{"offsets": (C,) tensor, **how they were fitted}`` for a checkpoint; None without offsets."""
        if self.calibration is None:
            return None
        return {**self.calibration, "offsets": self.class_offsets.detach().cpu().clone()}

    def load_calibration_state(self, state: dict | None) -> None:
        """The inverse of :meth:`calibration_state` (None: no offsets)."""
        if not state:
            self.set_class_offsets(None)
            return
        state = dict(state)
        self.set_class_offsets(state.pop("offsets"), state)

    def forward_logits(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) uint8 (or 0..255 float) RGB -> logits (N, C, H, W) at the input resolution.

        Pure tensor ops (no dicts in or out, no Python branching on values) for tracing / ONNX export.
        """
        h, w = images.shape[-2], images.shape[-1]
        x = self._pad(self.normalize(images))
        logits = resize(self.forward_features(x), x.shape[-2:])
        # index_select, not slicing: a slice adds shape guards that break dynamic-shape torch.export.
        rows = torch.arange(h, device=logits.device)
        cols = torch.arange(w, device=logits.device)
        return logits.index_select(2, rows).index_select(3, cols)

    # ---- detectron2-style path -----------------------------------------------------------------------
    def _batch_images(self, batched_inputs: list[dict]) -> tuple[Tensor, list[tuple[int, int]]]:
        """Normalise each image and zero-pad the batch to a common, divisible size."""
        images = [self.normalize(x["image"].to(self.device)) for x in batched_inputs]
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        d = self.size_divisibility
        hp = -(-max(s[0] for s in sizes) // d) * d
        wp = -(-max(s[1] for s in sizes) // d) * d
        batch = images[0].new_zeros((len(images), images[0].shape[0], hp, wp))
        for im, b in zip(images, batch, strict=True):
            b[:, : im.shape[-2], : im.shape[-1]].copy_(im)
        return batch, sizes

    def forward(self, batched_inputs: list[dict]):
        images, sizes = self._batch_images(batched_inputs)
        logits = self.forward_features(images)
        if self.training:
            targets = [x["sem_seg"] for x in batched_inputs]
            return {"loss_sem_seg": self.losses(logits, targets, sizes, images.shape[-2:])}
        return self.postprocess(logits, batched_inputs, sizes, images.shape[-2:])

    @torch.no_grad()
    def predict_labels(self, batched_inputs: list[dict], max_bytes: int = 64 << 20) -> list[dict]:
        """Top-1 labels at each record's (height, width): the argmax of what ``forward`` returns in eval,
        computed in bands from the head's logits (see ``top1.fused_top1``). With class offsets active, also
        ``"sem_seg_labels_plain"``: the argmax without them, from the same forward pass."""
        images, sizes = self._batch_images(batched_inputs)
        plain = self.head(self.backbone(images))
        decided = self._decide(plain)
        results = []
        for x, lg, lg_plain, (h, w) in zip(batched_inputs, decided, plain, sizes, strict=True):
            out_size = (int(x.get("height", h)), int(x.get("width", w)))
            out = {"sem_seg_labels": fused_top1(lg, images.shape[-2:], (h, w), out_size, max_bytes)}
            if self.offsets_active:
                out["sem_seg_labels_plain"] = fused_top1(lg_plain, images.shape[-2:], (h, w), out_size,
                                                         max_bytes)
            results.append(out)
        return results

    def losses(self, logits: Tensor, targets: list, image_sizes: list[tuple[int, int]],
               padded_size: Sequence[int]) -> Tensor:
        """Loss of head logits (N, C, H_pad / s, W_pad / s) against per-image targets.

        The target grid may differ from the image grid by a factor r (e.g. labels at the output stride):
        logits are upsampled to the padded image size times r, targets padded with ignore to match.
        """
        tsizes = [_hw(t) for t in targets]
        (h0, w0), (th, tw) = image_sizes[0], tsizes[0]
        ry, rx = th / h0, tw / w0
        for (h, w), (t_h, t_w) in zip(image_sizes, tsizes, strict=True):
            if abs(t_h - h * ry) > 0.5 or abs(t_w - w * rx) > 0.5:
                raise ValueError(f"Targets of one batch must share the image-to-target scale: image {(h, w)} "
                                 f"with target {(t_h, t_w)}, first image {(h0, w0)} -> {(th, tw)}")
        grid = (max(round(padded_size[0] * ry), max(s[0] for s in tsizes)),
                max(round(padded_size[1] * rx), max(s[1] for s in tsizes)))
        logits = resize(logits, grid).float()
        return self.loss(logits, self._batch_targets(targets, grid))

    def _batch_targets(self, targets: list, grid: tuple[int, int]):
        """Per-image targets -> one batch at ``grid``: int64 (N, h, w) padded with the ignore value, or a
        stacked soft-label container padded with zero valid mass."""
        t0 = targets[0]
        if isinstance(t0, Tensor):
            target = torch.full((len(targets), *grid), self.ignore_value, dtype=torch.long,
                                device=self.device)
            for t, out in zip(targets, target, strict=True):
                out[: t.shape[-2], : t.shape[-1]] = t.to(self.device)
            return target
        if t0.num_classes != self.num_classes:
            raise ValueError(f"Soft targets have {t0.num_classes} classes, the model {self.num_classes}.")
        return type(t0).stack([t.to(self.device) for t in targets], size=grid)

    def postprocess(self, logits: Tensor, batched_inputs: list[dict], image_sizes: list[tuple[int, int]],
                    padded_size: Sequence[int]) -> list[dict]:
        """Crop padding, upsample to each record's (height, width) and softmax -> list of {"sem_seg"}."""
        logits = resize(logits, padded_size)
        results = []
        for x, lg, (h, w) in zip(batched_inputs, logits, image_sizes, strict=True):
            out_size = (int(x.get("height", h)), int(x.get("width", w)))
            lg = resize(lg[None, :, :h, :w], out_size)[0]
            results.append({"sem_seg": lg.float().softmax(dim=0)})
        return results


def _build_loss(loss, ignore_value, multi_class, class_weights, loss_weight) -> nn.Module:
    legacy = {k: v for k, v in (("multi_class", multi_class), ("class_weights", class_weights),
                                ("loss_weight", loss_weight)) if v is not None}
    if loss is not None:
        if legacy:
            raise ValueError(f"SemanticSegmentor: give the loss options {sorted(legacy)} to the loss "
                             "(model.loss.soft / model.loss.hard), not beside model.loss")
        return loss
    weight = 1.0 if loss_weight is None else loss_weight
    return LossByTarget(
        soft=SoftKL(multi_class=True if multi_class is None else multi_class, class_weights=class_weights,
                    loss_weight=weight),
        hard=CrossEntropy(ignore_value=ignore_value, class_weights=class_weights, loss_weight=weight),
    )
