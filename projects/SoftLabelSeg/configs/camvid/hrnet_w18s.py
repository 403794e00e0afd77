"""CamVid with the HRNetV2 head: timm "hrnet_w18_small" (random init), every branch fused at the stride-2
stem's grid (logits at 23 x 30 for the 45 x 60 input at 1/8), 2400 iterations.

    python tools/run_ablation.py --config-file projects/SoftLabelSeg/configs/camvid/hrnet_w18s.py ...

Needs CamVid under ``$SOFTLABELSEG_DATASETS/camvid`` (docs/datasets.md).
"""

from ..common.models.hrnet_w48 import model
from ._evidence import dataloader, lr_multiplier, optimizer, train

model.num_classes = 11
model.backbone.model_name = "hrnet_w18_small"
model.backbone.out_indices = [0, 1, 2, 3, 4]  # 0: the stride-2 stem, so logits come out at stride 2

optimizer.lr = 2e-3

train.output_dir = (
    "./output/camvid_hrnet_w18s_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
