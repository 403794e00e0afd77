"""HRNetV2-W48 on Cityscapes, the paper's setup (Sec. 4.1).

The grid files (``hrnet_w48_{soft,nearest}_1of{8,4,2}.py``) set factor, batch and label mode.
SGD (momentum 0.9, weight decay 1e-4, none on norm layers), lr 0.01 with 1% linear warmup then poly 0.9,
80k iterations, ImageNet-pretrained backbone (timm). The paper gives neither the iteration count nor
the learning rate: 0.01 / poly 0.9 / 80k is the common Cityscapes schedule (HRNet, mmsegmentation).
Crops are the whole image at the training factor, rescaled 0.5-2x; evaluation at the training factor,
scored on the full 1024 x 2048 labels. Paper batch sizes (one GPU): 20 at 1/8 (128 x 256, 12 GB),
12 at 1/4 (256 x 512, 24 GB), 3 at 1/2 (512 x 1024, 24 GB). Out of memory: ``train.amp.enabled=True``
(bf16) or a smaller ``dataloader.train.total_batch_size`` with ``train.grad_accum_steps``.
"""

from ..common.data.cityscapes import dataloader
from ..common.models.hrnet_w48 import model
from ..common.optim import SGD as optimizer
from ..common.schedule import poly as lr_multiplier
from ..common.train import train

model.num_classes = 19
model.backbone.pretrained = True

dataloader.train.mapper.factor = 0.25
dataloader.train.mapper.label_mode = "soft"
dataloader.train.total_batch_size = 12

optimizer.lr = 0.01

train.max_iter = 80000
train.eval_period = 8000
train.checkpointer.period = 8000
_run = "hrnet_w48_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
train.output_dir = "./output/cityscapes/" + _run
