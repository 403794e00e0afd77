"""Cityscapes fine (19 classes) at 1/4 training resolution: the whole image at the factor, rescaled 0.5-2x
(paper). Paper grid: ``dataloader.train.mapper.factor`` = 0.125 / 0.25 / 0.5.
Labels: *_gtFine_labelTrainIds.png, or *_gtFine_labelIds.png mapped on the fly.
"""
from .base import dataloader

dataloader.train.dataset = "cityscapes_fine_sem_seg_train"
dataloader.test.dataset = "cityscapes_fine_sem_seg_val"
dataloader.train.mapper.num_classes = 19
dataloader.train.mapper.factor = 0.25
