"""SegFormer MiT-B2 with the all-MLP decoder (embedding dim 768).

Set the number of classes once with ``model.num_classes``. ImageNet weights: the official
``mit_b2.pth`` via ``model.backbone.checkpoint=<file>`` (there is no timm download for MiT).
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.config import deferred
from softlabelseg.modeling import MixTransformer, SegFormerHead

from .segmentor import segmentor

model = segmentor(
    backbone=L(MixTransformer)(
        embed_dims=[64, 128, 320, 512], num_heads=[1, 2, 5, 8], depths=[3, 4, 6, 3], sr_ratios=[8, 4, 2, 1],
        drop_path_rate=0.1, checkpoint=None,
    ),
    # deferred: the segmentor builds the head, passing the backbone's output_shape() as input_shape.
    head=L(deferred)(
        target=SegFormerHead, num_classes="${..num_classes}", embedding_dim=768, dropout=0.1
    ),
    num_classes=150,
)
