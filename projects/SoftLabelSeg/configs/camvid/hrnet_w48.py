"""CamVid with the paper's model: HRNetV2-W48 (timm "hrnet_w48", random init: nothing is downloaded),
logits at stride 4, 2400 iterations, bf16 on CUDA. A GPU recipe: one step is seconds on a CPU core.

    python tools/run_ablation.py --config-file projects/SoftLabelSeg/configs/camvid/hrnet_w48.py \\
        --variants nearest_topleft nearest soft --factors 1/8 1/4 --seeds 0 \\
        --also-eval camvid_sem_seg_val --output output/camvid_hrnet_w48

``results/hrnet_w48_gpu.sh`` runs these points after its ToyCity grid when CamVid is under
``$SOFTLABELSEG_DATASETS/camvid`` (docs/datasets.md). Like the other CamVid recipes it differs from them
only in its model and learning rate (the ToyCity HRNetV2-W48 recipe's).
"""

from ..common.models.hrnet_w48 import model
from ._evidence import dataloader, lr_multiplier, optimizer, train

model.num_classes = 11

optimizer.lr = 1e-3

train.amp.enabled = True  # bf16 on CUDA; ignored on CPU
train.output_dir = (
    "./output/camvid_hrnet_w48_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
