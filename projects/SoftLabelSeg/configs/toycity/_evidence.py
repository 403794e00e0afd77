"""What both evidence recipes share: ToyCity 512 x 1024, batch 8, AdamW with one learning rate, cosine with
5% warm-up, evaluation once at the end on the full-resolution val labels. Each recipe adds its model, its
learning rate and its length (iterations are equal at every factor of a grid)."""

from ..common.data.toycity import dataloader
from ..common.optim import AdamW as optimizer
from ..common.schedule import cosine as lr_multiplier
from ..common.train import train

dataloader.train.dataset = "toycity_512x1024_sem_seg_train"
dataloader.test.dataset = "toycity_512x1024_sem_seg_val"
dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 1  # decoding 512 x 1024 PNGs overlaps the step
dataloader.train.mapper.label_mode = "soft"

optimizer.weight_decay = 1e-4
optimizer.params.lr_factor_func = None

lr_multiplier.warmup_length = 0.05

train.eval_period = 0
train.log_period = 50
train.checkpointer.max_to_keep = 1
