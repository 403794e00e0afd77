"""HRNetV2-W48: timm "hrnet_w48" raw branches (48/96/192/384 channels, strides 4..32), HRNetV2 head.

Set the number of classes once with ``model.num_classes``. ImageNet weights:
``model.backbone.pretrained=True`` (timm download/cache) or ``model.backbone.checkpoint=<file>``.
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.config import deferred
from softlabelseg.modeling import HRNetV2Head, SemanticSegmentor, TimmBackbone

model = L(SemanticSegmentor)(
    backbone=L(TimmBackbone)(
        model_name="hrnet_w48", out_indices=[1, 2, 3, 4], feature_location="",
        pretrained=False, checkpoint=None,
    ),
    # deferred: the segmentor builds the head, passing the backbone's output_shape() as input_shape.
    head=L(deferred)(target=HRNetV2Head, num_classes="${..num_classes}", dropout=0.0),
    num_classes=19,
    pixel_mean=[123.675, 116.28, 103.53],
    pixel_std=[58.395, 57.12, 57.375],
    ignore_value=255,
    size_divisibility=None,
    multi_class=True,
    class_weights=None,
    loss_weight=1.0,
)
