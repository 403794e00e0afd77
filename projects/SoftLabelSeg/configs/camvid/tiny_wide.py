"""CamVid with the stride-1 evidence model: TinyCNN twice as wide (0.44M parameters, random init), logits at
the input grid (45 x 60 at 1/8), stride-8 context through dilation; 2400 iterations (52 epochs of CamVid
train), as on ToyCity.

    C=projects/SoftLabelSeg/configs/camvid/tiny_wide.py
    python tools/run_ablation.py --config-file $C --variants nearest_topleft nearest soft soft_area full_res \
        --factors 1/8 1/4 --seeds 0 1 2 --also-eval camvid_sem_seg_val --output output/camvid_tiny_wide

Needs CamVid under ``$SOFTLABELSEG_DATASETS/camvid`` (docs/datasets.md).
"""

from ..common.models.tiny_cnn import model
from ._evidence import dataloader, lr_multiplier, optimizer, train

model.num_classes = 11
model.backbone.widths = [32, 48, 96, 128]
model.backbone.output_stride = 1
model.head.channels = 64

optimizer.lr = 4e-3

train.output_dir = (
    "./output/camvid_tiny_wide_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
