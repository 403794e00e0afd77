"""What the CamVid evidence recipes share (the ToyCity evidence settings on real images): CamVid train
(367 images), batch 8, AdamW with one learning rate, cosine with 5% warm-up, evaluation once at the end on
the full-resolution test labels (233 images; val is scored too, by ``tools/run_ablation.py --also-eval``).
Fixed before any CamVid result: the recipes differ only in their model and learning rate."""

from ..common.data.camvid import dataloader
from ..common.optim import AdamW as optimizer
from ..common.schedule import cosine as lr_multiplier
from ..common.train import train

dataloader.train.total_batch_size = 8
dataloader.train.mapper.label_mode = "soft"

optimizer.weight_decay = 1e-4
optimizer.params.lr_factor_func = None

lr_multiplier.warmup_length = 0.05

train.max_iter = 2400
train.eval_period = 0
train.log_period = 50
train.checkpointer.period = 400
train.checkpointer.max_to_keep = 1
