"""Evidence candidate: ToyCity at 512 x 1024, TinyCNN at 2x width (0.4M parameters), output stride 1."""

from ..common.data.toycity import dataloader
from ..common.models.tiny_cnn import model
from ..common.optim import AdamW as optimizer
from ..common.schedule import cosine as lr_multiplier
from ..common.train import train

model.num_classes = 19
model.backbone.widths = [32, 48, 96, 128]
model.backbone.output_stride = 1
model.head.channels = 64

dataloader.train.dataset = "toycity_512x1024_sem_seg_train"
dataloader.test.dataset = "toycity_512x1024_sem_seg_val"
dataloader.train.total_batch_size = 8
dataloader.train.mapper.label_mode = "soft"

optimizer.lr = 4e-3
optimizer.weight_decay = 1e-4
optimizer.params.lr_factor_func = None

lr_multiplier.warmup_length = 0.05

train.max_iter = 1000
train.eval_period = 0
train.log_period = 50
train.checkpointer.period = 250
train.checkpointer.max_to_keep = 1
train.output_dir = (
    "./output/evidence_tiny_wide_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
