"""HRNetV2 head: every branch upsampled to the highest resolution, concatenated, 1x1 conv + classifier.

Wang et al., "Deep High-Resolution Representation Learning", TPAMI 2020. The backbone is timm's
``hrnet_w48`` with ``feature_location=""`` (the raw 48/96/192/384-channel branches, not the
classification "incre" features); see ``configs/common/models/hrnet_w48.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .layers import ConvBNReLU, resize

__all__ = ["ConcatFuseHead", "HRNetV2Head"]


class ConcatFuseHead(nn.Module):
    """features -> logits (N, num_classes, H / s_min, W / s_min).

    Args:
        input_shape: backbone ``output_shape()``; ``{name: (channels, stride)}``.
        num_classes: output channels.
        in_features: names to fuse (default: all); the first one sets the output resolution.
        channels: width of the 1x1 conv-BN-ReLU (default: sum of the input channels, as HRNetV2).
        dropout: before the classifier.
    """

    def __init__(self, input_shape: dict[str, tuple[int, int]], num_classes: int,
                 in_features: Sequence[str] | None = None, channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.in_features = list(in_features or input_shape)
        total = sum(input_shape[n][0] for n in self.in_features)
        channels = channels or total
        self.fuse = ConvBNReLU(total, channels, 1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        xs = [features[n] for n in self.in_features]
        size = xs[0].shape[-2:]
        x = torch.cat([xs[0]] + [resize(x, size) for x in xs[1:]], dim=1)
        return self.classifier(self.dropout(self.fuse(x)))


HRNetV2Head = ConcatFuseHead
