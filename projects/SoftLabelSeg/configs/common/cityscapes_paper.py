"""The paper's Cityscapes training setup (Sec. 4.1) without the model: the model recipes in
``cityscapes/`` import it and add their network.

SGD (momentum 0.9, weight decay 1e-4, none on norm layers), lr 0.01 with 1% linear warmup then poly 0.9,
80k iterations. The paper gives neither the iteration count nor the learning rate: 0.01 / poly 0.9 / 80k
is the common Cityscapes schedule (HRNet, mmsegmentation). Crops are the whole image at the training
factor, rescaled 0.5-2x; evaluation at the training factor, scored on the full 1024 x 2048 labels. Paper
batch sizes (one GPU): 20 at 1/8 (128 x 256, 12 GB), 12 at 1/4 (256 x 512, 24 GB), 3 at 1/2 (512 x 1024,
24 GB); the grid files set factor, batch and label mode. Out of memory: ``train.amp.enabled=True`` (bf16)
or a smaller ``dataloader.train.total_batch_size`` with ``train.grad_accum_steps``.
"""

from .data.cityscapes import dataloader
from .optim import SGD as optimizer
from .schedule import poly as lr_multiplier
from .train import train

dataloader.train.mapper.factor = 0.25
dataloader.train.mapper.label_mode = "soft"
dataloader.train.total_batch_size = 12

optimizer.lr = 0.01

train.max_iter = 80000
train.eval_period = 8000
train.checkpointer.period = 8000
