"""The module that gets traced: uint8 RGB NCHW in, logits / probabilities / uint8 class map out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .metadata import OUTPUT_KINDS


def model_logits(model: nn.Module, image: torch.Tensor, pixel_mean=None, pixel_std=None) -> torch.Tensor:
    """Logits (N, C, h, w) at the input resolution for a uint8 image batch (N, 3, h, w).

    A segmentor with ``forward_logits`` (uint8 in) normalises and pads itself; its padding and crop
    must be branch-free for dynamic-shape graphs to hold at sizes other than the traced one. Any other
    module gets ``(image - mean) / std`` and its output (a tensor, or a dict with "sem_seg") is
    resized to the input.
    """
    if hasattr(model, "forward_logits"):
        return model.forward_logits(image)
    h, w = image.shape[-2], image.shape[-1]
    x = image.float()
    if pixel_mean is not None:
        x = (x - pixel_mean.view(1, -1, 1, 1)) / pixel_std.view(1, -1, 1, 1)
    out = model(x)
    if isinstance(out, dict):
        out = out["sem_seg"]
    if out.shape[-2:] != image.shape[-2:]:
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out


def shrink_image(image: torch.Tensor, size=None, factor: float | None = None) -> torch.Tensor:
    """The training image resize inside the graph: a uint8 (N, 3, H, W) image to uint8 (N, 3, h, w).

    (h, w) is ``size``, or (round(H * factor), round(W * factor)) (half to even, at least 1, computed in
    float64 from the traced input shape, so a dynamic graph resizes any image as the data mapper does).
    The filter is softlabel_ops' ``torch:bilinear`` without antialias: float32 ``F.interpolate``
    (align_corners=False), rounded half to even and clipped back to uint8, as the mapper resizes uint8
    images.
    """
    if size is None:
        hw = torch._shape_as_tensor(image)[-2:].to(torch.float64) * float(factor)
        hw = torch.round(hw).clamp(min=1).to(torch.int64)
        size = (hw[0], hw[1])
    x = F.interpolate(image.float(), size=size, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def normalisation_of(model: nn.Module) -> tuple[list[float], list[float]] | None:
    """(mean, std) lists from a segmentor's ``pixel_mean``/``pixel_std`` buffers, if it has them."""
    mean, std = getattr(model, "pixel_mean", None), getattr(model, "pixel_std", None)
    if mean is None or std is None:
        return None
    return [float(v) for v in torch.as_tensor(mean).flatten()], [
        float(v) for v in torch.as_tensor(std).flatten()
    ]


class ExportWrapper(nn.Module):
    """Traced graph: ``image`` uint8 (N, 3, h, w) RGB -> output of ``output_kind``.

    output_kind: "logits" float32 (N, C, H, W), "probs" float32 softmax, "labels" uint8 (N, H, W) argmax.
    upsample_to: fixed (H, W) for in-graph bilinear upsampling; upsample_scale: in-graph scale factor
    (for dynamic graphs); both use ``align_corners`` exactly as ``F.interpolate``.
    resize_to / resize_factor: the graph takes the full image and shrinks it first (:func:`shrink_image`)
    to a fixed (h, w) or by a factor; None (default): the caller sends the model-size image.
    """

    def __init__(
        self,
        model: nn.Module,
        output_kind: str = "logits",
        pixel_mean=None,
        pixel_std=None,
        upsample_to: tuple[int, int] | None = None,
        upsample_scale: float | None = None,
        align_corners: bool = False,
        resize_to: tuple[int, int] | None = None,
        resize_factor: float | None = None,
    ):
        super().__init__()
        if output_kind not in OUTPUT_KINDS:
            raise ValueError(f"output_kind must be one of {OUTPUT_KINDS}, got {output_kind!r}")
        if upsample_to is not None and upsample_scale is not None:
            raise ValueError("give upsample_to or upsample_scale, not both")
        self.model = model
        self.output_kind = output_kind
        self.upsample_to = tuple(int(v) for v in upsample_to) if upsample_to else None
        self.upsample_scale = float(upsample_scale) if upsample_scale else None
        self.align_corners = bool(align_corners)
        if resize_to is not None and resize_factor is not None:
            raise ValueError("give resize_to or resize_factor, not both")
        self.resize_to = tuple(int(v) for v in resize_to) if resize_to else None
        self.resize_factor = float(resize_factor) if resize_factor else None
        if pixel_mean is not None and not hasattr(model, "forward_logits"):
            self.register_buffer(
                "pixel_mean", torch.as_tensor(pixel_mean, dtype=torch.float32), persistent=False
            )
            self.register_buffer(
                "pixel_std", torch.as_tensor(pixel_std, dtype=torch.float32), persistent=False
            )
        else:
            self.pixel_mean = self.pixel_std = None

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """Float32 logits after the optional in-graph resize and upsampling, (N, C, H, W)."""
        if self.resize_to is not None or self.resize_factor is not None:
            image = shrink_image(image, self.resize_to, self.resize_factor)
        logits = model_logits(self.model, image, self.pixel_mean, self.pixel_std)
        if self.upsample_to is not None:
            logits = F.interpolate(
                logits, size=self.upsample_to, mode="bilinear", align_corners=self.align_corners
            )
        elif self.upsample_scale is not None:
            logits = F.interpolate(
                logits, scale_factor=self.upsample_scale, mode="bilinear", align_corners=self.align_corners
            )
        return logits.float()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.logits(image)
        if self.output_kind == "probs":
            return logits.softmax(dim=1)
        if self.output_kind == "labels":
            return logits.argmax(dim=1).to(torch.uint8)
        return logits
