"""TinyCNN: a ~0.1M-parameter backbone for ToyCity and tests (pairs with ``ConcatFuseHead``)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .backbone import Backbone
from .layers import ConvBNReLU

__all__ = ["TinyCNN"]


class TinyCNN(Backbone):
    """Plain conv stages. (N, 3, H, W) -> finest first: {stage0: stride 1, stem: stride 2, stage1: stride 4,
    stage2: stride 8, stage3: stride 8 (dilated)}, from ``output_stride`` down.

    Args:
        widths: channels of the stem and the three stages (``stage0``, the full-resolution branch, has
            ``widths[0]`` channels).
        output_stride: 1, 2, 4 or 8: the finest feature returned, hence the head's output grid. Training at
            1/8 resolution leaves few pixels, so a coarse output grid cannot draw thin classes at all.
    """

    def __init__(self, widths: Sequence[int] = (16, 24, 48, 64), output_stride: int = 4):
        super().__init__()
        if output_stride not in (1, 2, 4, 8):
            raise ValueError(f"TinyCNN output_stride must be 1, 2, 4 or 8, got {output_stride}")
        c0, c1, c2, c3 = widths
        self.stage0 = ConvBNReLU(3, c0, 3) if output_stride == 1 else None
        self.stem = ConvBNReLU(3, c0, 3, stride=2)
        self.stage1 = nn.Sequential(ConvBNReLU(c0, c1, 3, stride=2), ConvBNReLU(c1, c1, 3))
        self.stage2 = nn.Sequential(ConvBNReLU(c1, c2, 3, stride=2), ConvBNReLU(c2, c2, 3))
        # Dilation instead of a fourth stride: context without losing resolution.
        self.stage3 = nn.Sequential(ConvBNReLU(c2, c3, 3, dilation=2), ConvBNReLU(c3, c3, 3, dilation=4))
        shapes = {"stage0": (c0, 1), "stem": (c0, 2), "stage1": (c1, 4), "stage2": (c2, 8), "stage3": (c3, 8)}
        self._out_shape = {k: v for k, v in shapes.items() if v[1] >= output_stride}

    @property
    def size_divisibility(self) -> int:
        return 8

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        s0 = self.stem(x)
        s1 = self.stage1(s0)
        s2 = self.stage2(s1)
        outs = {"stem": s0, "stage1": s1, "stage2": s2, "stage3": self.stage3(s2)}
        if self.stage0 is not None:
            outs["stage0"] = self.stage0(x)
        return {k: outs[k] for k in self._out_shape}
