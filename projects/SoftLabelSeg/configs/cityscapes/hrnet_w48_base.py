"""HRNetV2-W48 on Cityscapes, the paper's setup (``common/cityscapes_paper.py``), ImageNet-pretrained
backbone (timm). The grid files (``hrnet_w48_{soft,nearest}_1of{8,4,2}.py``) set factor, batch and labels.
"""

from ..common.cityscapes_paper import dataloader, lr_multiplier, optimizer, train
from ..common.models.hrnet_w48 import model

model.num_classes = 19
model.backbone.pretrained = True
_run = "hrnet_w48_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
train.output_dir = "./output/cityscapes/" + _run
