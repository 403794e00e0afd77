"""TinyCNN: a ~0.1M-parameter backbone for ToyCity and tests (pairs with ``ConcatFuseHead``)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .backbone import Backbone
from .layers import ConvBNReLU

__all__ = ["TinyCNN"]


class TinyCNN(Backbone):
    """Plain conv stages. (N, 3, H, W) -> {stage1: stride 4, stage2: stride 8, stage3: stride 8 (dilated)}.

    Args:
        widths: channels of the stem and the three stages.
        output_stride: 4 returns all three stages; 8 drops ``stage1`` so the head's output is at stride 8.
    """

    def __init__(self, widths: Sequence[int] = (16, 24, 48, 64), output_stride: int = 4):
        super().__init__()
        if output_stride not in (4, 8):
            raise ValueError(f"TinyCNN output_stride must be 4 or 8, got {output_stride}")
        c0, c1, c2, c3 = widths
        self.stem = ConvBNReLU(3, c0, 3, stride=2)
        self.stage1 = nn.Sequential(ConvBNReLU(c0, c1, 3, stride=2), ConvBNReLU(c1, c1, 3))
        self.stage2 = nn.Sequential(ConvBNReLU(c1, c2, 3, stride=2), ConvBNReLU(c2, c2, 3))
        # Dilation instead of a fourth stride: context without losing resolution.
        self.stage3 = nn.Sequential(ConvBNReLU(c2, c3, 3, dilation=2), ConvBNReLU(c3, c3, 3, dilation=4))
        shapes = {"stage1": (c1, 4), "stage2": (c2, 8), "stage3": (c3, 8)}
        if output_stride == 8:
            del shapes["stage1"]
        self._out_shape = shapes

    @property
    def size_divisibility(self) -> int:
        return 8

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        s1 = self.stage1(self.stem(x))
        s2 = self.stage2(s1)
        outs = {"stage1": s1, "stage2": s2, "stage3": self.stage3(s2)}
        return {k: outs[k] for k in self._out_shape}
