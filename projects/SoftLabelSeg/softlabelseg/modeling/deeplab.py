"""DeepLabV3+ head: ASPP on the deepest feature + a decoder fusing a stride-4 low-level feature.

Chen et al., "Encoder-Decoder with Atrous Separable Convolution", ECCV 2018 (plain, not separable,
3x3 convolutions here, as in the common ResNet-101 reference implementations).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .layers import ConvBNReLU, resize

__all__ = ["ASPP", "DeepLabV3PlusHead"]


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3 and an image-pooling branch, projected.

    (N, in_channels, h, w) -> (N, channels, h, w).
    """

    def __init__(self, in_channels: int, channels: int = 256, dilations: Sequence[int] = (6, 12, 18),
                 dropout: float = 0.1):
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNReLU(in_channels, channels, 1)]
            + [ConvBNReLU(in_channels, channels, 3, dilation=d) for d in dilations]
        )
        # No norm on the pooled branch: BatchNorm over a 1x1 map fails for batch size 1 (as in detectron2).
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, channels, 1),
                                  nn.ReLU(inplace=True))
        self.project = nn.Sequential(ConvBNReLU(channels * (len(dilations) + 2), channels, 1),
                                     nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3PlusHead(nn.Module):
    """ASPP + decoder. features -> logits (N, num_classes, H / s_low, W / s_low).

    Args:
        input_shape: backbone ``output_shape()``; ``{name: (channels, stride)}``.
        num_classes: output channels.
        in_features: (low-level, deep) feature names; default: the first and last of ``input_shape``.
        aspp_dilations: default (6, 12, 18) scaled by 16 / deep stride (so (12, 24, 36) at stride 8).
    """

    def __init__(self, input_shape: dict[str, tuple[int, int]], num_classes: int,
                 in_features: Sequence[str] | None = None, aspp_channels: int = 256,
                 aspp_dilations: Sequence[int] | None = None, low_level_channels: int = 48,
                 decoder_channels: int = 256, dropout: float = 0.1):
        super().__init__()
        names = list(input_shape)
        self.low_name, self.deep_name = in_features or (names[0], names[-1])
        low_ch, _ = input_shape[self.low_name]
        deep_ch, deep_stride = input_shape[self.deep_name]
        if aspp_dilations is None:
            aspp_dilations = [d * 16 // deep_stride for d in (6, 12, 18)]
        self.aspp = ASPP(deep_ch, aspp_channels, aspp_dilations, dropout)
        self.reduce = ConvBNReLU(low_ch, low_level_channels, 1)
        self.fuse = nn.Sequential(
            ConvBNReLU(aspp_channels + low_level_channels, decoder_channels, 3),
            ConvBNReLU(decoder_channels, decoder_channels, 3),
        )
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        low = self.reduce(features[self.low_name])
        deep = resize(self.aspp(features[self.deep_name]), low.shape[-2:])
        return self.classifier(self.fuse(torch.cat([deep, low], dim=1)))
