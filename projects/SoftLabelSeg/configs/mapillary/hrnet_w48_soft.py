"""HRNetV2-W48 on Mapillary Vistas v1.2 (65 classes) with soft labels (paper Table 7).

"The same setup as the best Cityscapes model" (HRNetV2-W48 at 1/2: 512 x 1024 crops, batch 3, SGD
momentum 0.9 / weight decay 1e-4, lr 0.01, poly 0.9): crops of 512 x 1024 of the images at 1/4 of their
(about 3000 x 4000) size, rescaled 0.5-2x; evaluation at the same factor on the full-resolution labels.
160k iterations (Mapillary has 6x the images of Cityscapes; the paper gives no count). Sparse soft
labels: exact, and cheaper than 65 dense planes per pixel.
"""

from ..common.data.mapillary import dataloader
from ..common.models.hrnet_w48 import model
from ..common.optim import SGD as optimizer
from ..common.schedule import poly as lr_multiplier
from ..common.train import train

model.num_classes = 65
model.backbone.pretrained = True

dataloader.train.mapper.factor = 0.25
dataloader.train.mapper.crop_size = [512, 1024]
dataloader.train.mapper.label_mode = "soft_sparse"
dataloader.train.total_batch_size = 3

optimizer.lr = 0.01

train.max_iter = 160000
train.eval_period = 16000
train.checkpointer.period = 16000
train.output_dir = "./output/mapillary/hrnet_w48_${dataloader.train.mapper.label_mode}"
