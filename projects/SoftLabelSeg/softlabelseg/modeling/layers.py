"""Small building blocks shared by the heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvBNReLU", "resize"]


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU; ``padding`` keeps the size for odd kernels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 dilation: int = 1, groups: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def resize(x: Tensor, size: tuple[int, int] | list[int]) -> Tensor:
    """Bilinear resize of (N, C, h, w) to ``size`` (align_corners=False: the identity at the same size).

    In eager mode an equal size returns ``x`` itself: the same values, without the cost of an identity
    interpolation and of its backward (most of a stride-1 model's step on a CPU). While tracing or
    exporting the interpolation stays, so that no shape comparison adds guards to a dynamic-shape graph.
    """
    if tuple(x.shape[-2:]) == tuple(size) and not _tracing():
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()
