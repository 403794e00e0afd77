"""HRNetV2-W48, Cityscapes at 1/8 (128 x 256, batch 20), cell-centred nearest labels (baseline)."""

from .hrnet_w48_base import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.factor = 0.125
dataloader.train.total_batch_size = 20
dataloader.train.mapper.label_mode = "nearest"
