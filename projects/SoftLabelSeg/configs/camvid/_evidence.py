"""What the CamVid evidence recipes share (the ToyCity evidence settings on real images): CamVid train
(367 images), batch 8, AdamW with one learning rate, cosine with 5% warm-up, evaluation once at the end on
the full-resolution test labels (233 images; val is scored too, by ``tools/run_ablation.py --also-eval``).
Fixed before any CamVid result: the recipes differ only in their model and learning rate."""

from ..common.data.camvid import dataloader
from ..common.evidence import lr_multiplier, optimizer, train

dataloader.train.total_batch_size = 8
dataloader.train.mapper.label_mode = "soft"

train.max_iter = 2400
train.checkpointer.period = 400
