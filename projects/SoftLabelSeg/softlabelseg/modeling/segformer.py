"""SegFormer: Mix Transformer (MiT) encoder and the all-MLP decoder.

Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers",
NeurIPS 2021. Module and parameter names follow the official ``mix_transformer.py`` / ``SegFormerHead``
so the released ``mit_b*.pth`` (ImageNet) weights load with ``MixTransformer(checkpoint=...)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import Tensor, nn

from .backbone import Backbone, load_state_dict_file
from .layers import ConvBNReLU, resize

__all__ = ["MixTransformer", "SegFormerHead", "mit_b0", "mit_b2"]

logger = logging.getLogger(__name__)


def _to_2d(x: Tensor, h: int, w: int) -> Tensor:
    """(N, h*w, C) tokens -> (N, C, h, w)."""
    return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)


class OverlapPatchEmbed(nn.Module):
    """Strided conv with overlapping windows. (N, C_in, H, W) -> tokens (N, H/s * W/s, dim), h, w."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, stride: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride, padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[2], x.shape[3]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class Attention(nn.Module):
    """Efficient self-attention: keys/values from a map shrunk by ``sr_ratio`` (cost / sr_ratio^2)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, sr_ratio: int = 1):
        super().__init__()
        self.num_heads, self.sr_ratio, self.attn_drop = num_heads, sr_ratio, attn_drop
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        n, l, c = x.shape
        q = self.q(x).reshape(n, l, self.num_heads, c // self.num_heads).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.norm(self.sr(_to_2d(x, h, w)).flatten(2).transpose(1, 2))
        kv = self.kv(x).reshape(n, -1, 2, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1],
                                             dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(n, l, c)))


class DWConv(nn.Module):
    """3x3 depthwise conv on tokens: gives Mix-FFN its positional information (no position embedding)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        return self.dwconv(_to_2d(x, h, w)).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """Mix-FFN: Linear -> depthwise 3x3 -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.dwconv(self.fc1(x), h, w)))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), x + mix_ffn(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, True, attn_drop, drop, sr_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))


class MixTransformer(Backbone):
    """MiT encoder. (N, 3, H, W) -> {stage1..stage4: (N, embed_dims[i], H / 2^(i+2), W / 2^(i+2))}.

    Defaults are MiT-B2. ``checkpoint`` loads an official ``mit_b*.pth`` (or a full SegFormer checkpoint,
    whose ``backbone.`` prefix is stripped); ``pretrained`` is accepted for symmetry with timm but there are
    no downloadable weights here, so it requires ``checkpoint``.
    """

    def __init__(self, embed_dims: Sequence[int] = (64, 128, 320, 512),
                 num_heads: Sequence[int] = (1, 2, 5, 8), mlp_ratios: Sequence[float] = (4, 4, 4, 4),
                 depths: Sequence[int] = (3, 4, 6, 3),
                 sr_ratios: Sequence[int] = (8, 4, 2, 1), in_chans: int = 3, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.1, pretrained: bool = False,
                 checkpoint: str | None = None):
        super().__init__()
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        cur = 0
        for i, (dim, depth) in enumerate(zip(embed_dims, depths, strict=True)):
            patch, stride, c_in = (7, 4, in_chans) if i == 0 else (3, 2, embed_dims[i - 1])
            setattr(self, f"patch_embed{i + 1}", OverlapPatchEmbed(c_in, dim, patch, stride))
            setattr(self, f"block{i + 1}", nn.ModuleList(
                Block(dim, num_heads[i], mlp_ratios[i], sr_ratios[i], drop_rate, attn_drop_rate, dpr[cur + j])
                for j in range(depth)
            ))
            setattr(self, f"norm{i + 1}", nn.LayerNorm(dim, eps=1e-6))
            cur += depth
        self._out_shape = {f"stage{i + 1}": (d, 2 ** (i + 2)) for i, d in enumerate(embed_dims)}
        self.apply(_init_weights)
        if pretrained and not checkpoint:
            raise ValueError("MixTransformer has no downloadable weights: pass checkpoint=<mit_b*.pth path>.")
        if checkpoint:
            self.load_checkpoint(checkpoint)

    def load_checkpoint(self, path: str) -> None:
        sd = load_state_dict_file(path)
        if any(k.startswith("backbone.") for k in sd):
            sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if missing or unexpected:
            logger.warning("MiT checkpoint %s: %d missing keys (e.g. %s), %d unexpected keys (e.g. %s)",
                           path, len(missing), missing[:3], len(unexpected), unexpected[:3])

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        outs = {}
        for i in range(1, len(self._out_shape) + 1):
            x, h, w = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"block{i}"):
                x = blk(x, h, w)
            x = _to_2d(getattr(self, f"norm{i}")(x), h, w)
            outs[f"stage{i}"] = x
        return outs


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0, (2.0 / fan_out) ** 0.5)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


mit_b2 = MixTransformer
mit_b0 = partial(MixTransformer, embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2))


class MLP(nn.Module):
    """Per-pixel linear projection. (N, C_in, h, w) -> (N, dim, h, w)."""

    def __init__(self, input_dim: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Linear(input_dim, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SegFormerHead(nn.Module):
    """All-MLP decoder: project each stage to ``embedding_dim``, upsample to the first, fuse, classify.

    features -> logits (N, num_classes, H / s_min, W / s_min).
    ``embedding_dim``: 768 for B2..B5, 256 for B0/B1.
    """

    def __init__(self, input_shape: dict[str, tuple[int, int]], num_classes: int,
                 in_features: Sequence[str] | None = None, embedding_dim: int = 768, dropout: float = 0.1):
        super().__init__()
        self.in_features = list(in_features or input_shape)
        for i, name in enumerate(self.in_features):
            setattr(self, f"linear_c{i + 1}", MLP(input_shape[name][0], embedding_dim))
        self.linear_fuse = ConvBNReLU(embedding_dim * len(self.in_features), embedding_dim, 1)
        self.dropout = nn.Dropout(dropout)
        self.linear_pred = nn.Conv2d(embedding_dim, num_classes, 1)

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        xs = [getattr(self, f"linear_c{i + 1}")(features[n]) for i, n in enumerate(self.in_features)]
        size = xs[0].shape[-2:]
        # Official order: deepest first.
        x = torch.cat([resize(x, size) for x in reversed(xs)], dim=1)
        return self.linear_pred(self.dropout(self.linear_fuse(x)))
