"""DeepLabV3+ R101, Cityscapes at 1/4 (256 x 512, batch 12), cell-centred nearest labels (baseline)."""

from .deeplabv3plus_r101_base import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.mapper.factor = 0.25
dataloader.train.total_batch_size = 12
dataloader.train.mapper.label_mode = "nearest"
