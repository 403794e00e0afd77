"""ToyCity (generated into $SOFTLABELSEG_DATASETS/toycity on first use) at 1/8 training resolution.

Change the resolution with ``dataloader.train.mapper.factor=0.25`` (the crop and the test image follow) and
the labels with ``dataloader.train.mapper.label_mode=nearest`` (the cell-centred baseline).
"""
from .base import dataloader

dataloader.train.dataset = "toycity_sem_seg_train"
dataloader.test.dataset = "toycity_sem_seg_val"
dataloader.train.mapper.num_classes = 19
dataloader.train.mapper.factor = 0.125
dataloader.train.num_workers = 0  # small images: worker start-up costs more than it saves on 2 cores
dataloader.test.num_workers = 0
