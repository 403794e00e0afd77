"""The evidence recipe: ToyCity at 512 x 1024, HRNetV2 (timm "hrnet_w18_small", random init) at 1/8.

    C=projects/SoftLabelSeg/configs/toycity/evidence_hrnet_w18s.py
    python tools/run_ablation.py --config-file $C ...

At 1/8 the training image is 64 x 128, large enough to show ToyCity's poles, lights and signs (1-4 pixels
wide there). The head fuses every HRNet branch at the stride-2 stem's grid (logits at 32 x 64 for a 64 x 128
input), the finest grid the backbone offers. Evaluation is on the full 512 x 1024 val labels.
"""

from ..common.data.toycity import dataloader
from ..common.models.hrnet_w48 import model
from ..common.optim import AdamW as optimizer
from ..common.schedule import cosine as lr_multiplier
from ..common.train import train

model.num_classes = 19
model.backbone.model_name = "hrnet_w18_small"
model.backbone.out_indices = [0, 1, 2, 3, 4]  # 0: the stride-2 stem, so logits come out at stride 2

dataloader.train.dataset = "toycity_512x1024_sem_seg_train"
dataloader.test.dataset = "toycity_512x1024_sem_seg_val"
dataloader.train.total_batch_size = 8
dataloader.train.num_workers = 1  # decoding 512 x 1024 PNGs overlaps the step
dataloader.train.mapper.label_mode = "soft"

optimizer.lr = 2e-3
optimizer.weight_decay = 1e-4
optimizer.params.lr_factor_func = None

lr_multiplier.warmup_length = 0.05

train.max_iter = 800
train.eval_period = 0
train.log_period = 50
train.checkpointer.period = 200
train.checkpointer.max_to_keep = 1
train.output_dir = (
    "./output/evidence_hrnet_w18s_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
