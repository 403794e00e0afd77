"""The first evidence recipe: ToyCity at 512 x 1024, HRNetV2 (timm "hrnet_w18_small", random init) at 1/8.

    C=projects/SoftLabelSeg/configs/toycity/evidence_hrnet_w18s.py
    python tools/run_ablation.py --config-file $C ...

At 1/8 the training image is 64 x 128, large enough to show ToyCity's poles, lights and signs (1-4 pixels
wide there). The head fuses every HRNet branch at the stride-2 stem's grid (logits at 32 x 64 for a 64 x 128
input), the finest grid the backbone offers. Evaluation is on the full 512 x 1024 val labels. 800 iterations
leave it far from converged (results/pilots: 3200 gave 51.7 mIoU against 39.8); see also
``evidence_tiny_wide.py``, which predicts at stride 1.
"""

from ..common.models.hrnet_w48 import model
from ._evidence import dataloader, lr_multiplier, optimizer, train

model.num_classes = 19
model.backbone.model_name = "hrnet_w18_small"
model.backbone.out_indices = [0, 1, 2, 3, 4]  # 0: the stride-2 stem, so logits come out at stride 2

optimizer.lr = 2e-3

train.max_iter = 800
train.checkpointer.period = 200
train.output_dir = (
    "./output/evidence_hrnet_w18s_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
