"""What both evidence recipes share: ToyCity 512 x 1024, batch 8, AdamW with one learning rate, cosine with
5% warm-up, evaluation once at the end on the full-resolution val labels. Each recipe adds its model, its
learning rate and its length (iterations are equal at every factor of a grid)."""

from ..common.data.toycity import dataloader
from ..common.evidence import lr_multiplier, optimizer, train

dataloader.train.dataset = "toycity_512x1024_sem_seg_train"
dataloader.test.dataset = "toycity_512x1024_sem_seg_val"
dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 1  # decoding 512 x 1024 PNGs overlaps the step
dataloader.train.mapper.label_mode = "soft"
