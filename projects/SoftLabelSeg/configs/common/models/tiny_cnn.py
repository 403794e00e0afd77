"""TinyCNN (~0.1M parameters) + concat-fuse head: ToyCity and tests. Output stride 4 (or 8 with
``model.backbone.output_stride=8``). Set the number of classes once with ``model.num_classes``.
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.config import deferred
from softlabelseg.modeling import ConcatFuseHead, TinyCNN

from .segmentor import segmentor

model = segmentor(
    backbone=L(TinyCNN)(widths=[16, 24, 48, 64], output_stride=4),
    # deferred: the segmentor builds the head, passing the backbone's output_shape() as input_shape.
    head=L(deferred)(target=ConcatFuseHead, num_classes="${..num_classes}", channels=32, dropout=0.0),
    num_classes=19,
)
