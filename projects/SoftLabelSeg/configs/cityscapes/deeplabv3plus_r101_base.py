"""DeepLabV3+ (dilated ResNet-101, output stride 8) on Cityscapes, the paper's setup
(``common/cityscapes_paper.py``), ImageNet-pretrained backbone (timm; the paper used a WideResNet-38).
The grid files (``deeplabv3plus_r101_{soft,nearest}_1of{8,4,2}.py``) set factor, batch and labels.
Out of memory: also ``model.backbone.output_stride=16``.
"""

from ..common.cityscapes_paper import dataloader, lr_multiplier, optimizer, train
from ..common.models.deeplabv3plus_r101 import model

model.num_classes = 19
model.backbone.pretrained = True
_run = "deeplabv3plus_r101_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
train.output_dir = "./output/cityscapes/" + _run
