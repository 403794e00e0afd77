"""HRNetV2-W48: timm "hrnet_w48" raw branches (48/96/192/384 channels, strides 4..32), HRNetV2 head.

Set the number of classes once with ``model.num_classes``. ImageNet weights:
``model.backbone.pretrained=True`` (timm download/cache) or ``model.backbone.checkpoint=<file>``.
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.config import deferred
from softlabelseg.modeling import HRNetV2Head, TimmBackbone

from .segmentor import segmentor

model = segmentor(
    backbone=L(TimmBackbone)(
        model_name="hrnet_w48", out_indices=[1, 2, 3, 4], feature_location="",
        pretrained=False, checkpoint=None,
    ),
    # deferred: the segmentor builds the head, passing the backbone's output_shape() as input_shape.
    head=L(deferred)(target=HRNetV2Head, num_classes="${..num_classes}", dropout=0.0),
    num_classes=19,
)
