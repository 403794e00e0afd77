"""DeepLabV3+ with a dilated ResNet-101 (timm "resnet101d"; "resnet101" also works), output stride 8.

Set the number of classes once with ``model.num_classes``; the head follows it. ImageNet weights:
``model.backbone.pretrained=True`` (timm download/cache) or ``model.backbone.checkpoint=<file>``.
``model.backbone.output_stride=16`` halves the compute (the ASPP rates follow the stride).
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.config import deferred
from softlabelseg.modeling import DeepLabV3PlusHead, TimmBackbone

from .segmentor import segmentor

model = segmentor(
    backbone=L(TimmBackbone)(
        model_name="resnet101d", out_indices=[1, 4], output_stride=8, pretrained=False, checkpoint=None
    ),
    # deferred: the segmentor builds the head, passing the backbone's output_shape() as input_shape.
    head=L(deferred)(
        target=DeepLabV3PlusHead, num_classes="${..num_classes}", aspp_dilations=None, dropout=0.1
    ),
    num_classes=19,
)
