"""HRNetV2-W48, Cityscapes at 1/2 (512 x 1024, batch 3), cell-centred nearest labels (baseline)."""

from .hrnet_w48_base import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.factor = 0.5
dataloader.train.total_batch_size = 3
dataloader.train.mapper.label_mode = "nearest"
