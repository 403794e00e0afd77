"""SegFormer MiT-B2 on ADE20K (150 classes) with soft labels at full resolution (paper Table 6).

The paper applies soft resampling to the random rescale (0.5-2x) of 512 x 512 crops, which up-samples
labels when a crop is larger than its image. Schedule: SegFormer's (AdamW lr 6e-5, weight decay 0.01,
decode head at 10x lr, 1% warmup then poly 1.0, 160k iterations, batch 16), here as batch 8 x 2
accumulation steps to fit one 24 GB GPU (the paper gives no schedule). Labels are sparse soft labels
(top-K per pixel, exact) because 150 dense planes per pixel are costly. ImageNet weights: the official
``mit_b2.pth`` via ``model.backbone.checkpoint=<file>`` (no timm download exists for MiT).
"""

from ..common.data.ade20k import dataloader
from ..common.models.segformer_b2 import model
from ..common.optim import AdamW as optimizer
from ..common.schedule import poly_segformer as lr_multiplier
from ..common.train import train

model.num_classes = 150

dataloader.train.mapper.label_mode = "soft_sparse"
dataloader.train.total_batch_size = 8

train.grad_accum_steps = 2
train.max_iter = 160000
train.eval_period = 16000
train.checkpointer.period = 16000
train.output_dir = "./output/ade20k/segformer_b2_${dataloader.train.mapper.label_mode}"
