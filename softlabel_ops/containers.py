"""Soft-label containers: dense (C, h, w) distributions and sparse top-K (K, h, w) class lists.

Both carry `valid`, the share of each pixel's footprint that was not ignore (kernel weight of the
non-ignore taps). Spatial methods (crop, hflip, pad_to, stack) treat new pixels as padding: valid 0,
all-zero distribution. Unbatched containers have (C|K, h, w) tensors and (h, w) valid; batched ones
add a leading N. For negative-lobe (bicubic) resampling without clamp, distributions still sum to 1
but single entries may be negative or above 1, and valid may slightly exceed 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# A pixel is single-class when its largest share is at least 1 - ONE_HOT_TOL.
ONE_HOT_TOL = 1e-6


def _window(t: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """t[..., top:top+height, left:left+width] with zero padding where the window leaves t."""
    h, w = t.shape[-2:]
    out = t.new_zeros(t.shape[:-2] + (height, width))
    y0, y1 = max(top, 0), min(top + height, h)
    x0, x1 = max(left, 0), min(left + width, w)
    if y1 > y0 and x1 > x0:
        out[..., y0 - top: y1 - top, x0 - left: x1 - left] = t[..., y0:y1, x0:x1]
    return out


def _entropy(p: torch.Tensor, dim: int) -> torch.Tensor:
    pos = p > 0
    return -torch.where(pos, p * torch.log(torch.where(pos, p, 1)), 0).sum(dim)


def _max_hw(items, size):
    if size is not None:
        return int(size[0]), int(size[1])
    return max(i.valid.shape[-2] for i in items), max(i.valid.shape[-1] for i in items)


@dataclass
class DenseSoftLabel:
    """probs float32 (C, h, w) / (N, C, h, w), sums to 1 where valid > 0; valid float32 (h, w) / (N, h, w)."""

    probs: torch.Tensor
    valid: torch.Tensor

    @property
    def num_classes(self) -> int:
        return self.probs.shape[-3]

    @property
    def batched(self) -> bool:
        return self.probs.dim() == 4

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.valid.shape[-2:])

    @property
    def device(self) -> torch.device:
        return self.probs.device

    def to(self, *args, **kwargs) -> DenseSoftLabel:
        """Moves both tensors (torch.Tensor.to arguments)."""
        return DenseSoftLabel(self.probs.to(*args, **kwargs), self.valid.to(*args, **kwargs))

    def to_sparse(self, top_k: int | None = None) -> SparseSoftLabel:
        """Top-K classes per pixel (see torch_kernel.top_classes); exact unless top_k truncates."""
        from .torch_kernel import top_classes

        idx, wts = top_classes(self.probs.double(), top_k, dim=-3)
        return SparseSoftLabel(idx, wts.float(), self.valid.clone(), self.num_classes)

    def crop(self, top: int, left: int, height: int, width: int) -> DenseSoftLabel:
        """Window of the grid; parts outside the map are padding (valid 0)."""
        return DenseSoftLabel(_window(self.probs, top, left, height, width),
                              _window(self.valid, top, left, height, width))

    def hflip(self) -> DenseSoftLabel:
        return DenseSoftLabel(self.probs.flip(-1), self.valid.flip(-1))

    def pad_to(self, height: int, width: int) -> DenseSoftLabel:
        """Pads bottom/right to (height, width) with valid-0 pixels."""
        return self.crop(0, 0, height, width)

    def argmax(self, ignore_value: int = 255, min_valid: float = 0.5) -> torch.Tensor:
        """int64 (h, w) / (N, h, w) hard labels; ignore_value where valid < min_valid or valid == 0."""
        lab = self.probs.argmax(-3)
        drop = (self.valid < min_valid) | (self.valid <= 0)
        return torch.where(drop, torch.full_like(lab, ignore_value), lab)

    def single_class_mask(self) -> torch.Tensor:
        """bool (h, w) / (N, h, w): valid pixels whose distribution is one-hot."""
        return (self.probs.amax(-3) >= 1 - ONE_HOT_TOL) & (self.valid > 0)

    def entropy(self) -> torch.Tensor:
        """Shannon entropy (nats) of each pixel's distribution, 0 where valid == 0; (h, w) / (N, h, w)."""
        return _entropy(self.probs, -3)

    @staticmethod
    def stack(items: list[DenseSoftLabel], size: tuple[int, int] | None = None) -> DenseSoftLabel:
        """Batches unbatched containers, padding each to `size` (default: the largest h and w)."""
        h, w = _max_hw(items, size)
        return DenseSoftLabel(torch.stack([i.pad_to(h, w).probs for i in items]),
                              torch.stack([i.pad_to(h, w).valid for i in items]))


@dataclass
class SparseSoftLabel:
    """indices int64 (K, h, w) / (N, K, h, w), weights float32 same shape, valid float32 (h, w) / (N, h, w).

    Entries are sorted by decreasing weight; padding entries have index 0 and weight 0.
    """

    indices: torch.Tensor
    weights: torch.Tensor
    valid: torch.Tensor
    num_classes: int

    @property
    def batched(self) -> bool:
        return self.indices.dim() == 4

    @property
    def k(self) -> int:
        return self.indices.shape[-3]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.valid.shape[-2:])

    @property
    def device(self) -> torch.device:
        return self.weights.device

    def to(self, *args, **kwargs) -> SparseSoftLabel:
        """Moves (and optionally casts) weights/valid; indices follow the device and stay int64."""
        wts = self.weights.to(*args, **kwargs)
        return SparseSoftLabel(self.indices.to(wts.device), wts, self.valid.to(*args, **kwargs),
                               self.num_classes)

    def to_dense(self) -> DenseSoftLabel:
        shape = self.weights.shape[:-3] + (self.num_classes,) + self.weights.shape[-2:]
        probs = self.weights.new_zeros(shape).scatter_add_(-3, self.indices, self.weights)
        return DenseSoftLabel(probs, self.valid.clone())

    def to_sparse(self, top_k: int | None = None) -> SparseSoftLabel:
        return self if top_k is None or top_k >= self.k else self.to_dense().to_sparse(top_k)

    def crop(self, top: int, left: int, height: int, width: int) -> SparseSoftLabel:
        return SparseSoftLabel(_window(self.indices, top, left, height, width),
                               _window(self.weights, top, left, height, width),
                               _window(self.valid, top, left, height, width), self.num_classes)

    def hflip(self) -> SparseSoftLabel:
        return SparseSoftLabel(self.indices.flip(-1), self.weights.flip(-1), self.valid.flip(-1),
                               self.num_classes)

    def pad_to(self, height: int, width: int) -> SparseSoftLabel:
        return self.crop(0, 0, height, width)

    def pad_k(self, k: int) -> SparseSoftLabel:
        """Adds padding entries up to K = k."""
        extra = k - self.k
        if extra <= 0:
            return self
        shape = list(self.indices.shape)
        shape[-3] = extra
        return SparseSoftLabel(torch.cat([self.indices, self.indices.new_zeros(shape)], -3),
                               torch.cat([self.weights, self.weights.new_zeros(shape)], -3),
                               self.valid, self.num_classes)

    def argmax(self, ignore_value: int = 255, min_valid: float = 0.5) -> torch.Tensor:
        best = self.weights.argmax(-3, keepdim=True)
        lab = torch.gather(self.indices, -3, best).squeeze(-3)
        drop = (self.valid < min_valid) | (self.valid <= 0)
        return torch.where(drop, torch.full_like(lab, ignore_value), lab)

    def single_class_mask(self) -> torch.Tensor:
        return (self.weights.amax(-3) >= 1 - ONE_HOT_TOL) & (self.valid > 0)

    def entropy(self) -> torch.Tensor:
        return _entropy(self.weights, -3)

    @staticmethod
    def stack(items: list[SparseSoftLabel], size: tuple[int, int] | None = None) -> SparseSoftLabel:
        """Batches unbatched containers, padding space like DenseSoftLabel.stack and K to the largest K."""
        h, w = _max_hw(items, size)
        k = max(i.k for i in items)
        items = [i.pad_k(k).pad_to(h, w) for i in items]
        return SparseSoftLabel(torch.stack([i.indices for i in items]),
                               torch.stack([i.weights for i in items]),
                               torch.stack([i.valid for i in items]), items[0].num_classes)

