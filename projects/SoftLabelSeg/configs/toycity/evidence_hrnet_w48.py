"""The paper's model at the paper's scale on ToyCity: HRNetV2-W48 (timm "hrnet_w48", random init: nothing
is downloaded), ToyCity rendered at Cityscapes' 1024 x 2048, trained at 1/8 (128 x 256 input) or 1/4,
scored on the full 1024 x 2048 val labels. A GPU recipe: one step is seconds on a CPU core.

    C=projects/SoftLabelSeg/configs/toycity/evidence_hrnet_w48.py
    python tools/run_ablation.py --config-file $C --variants nearest_topleft nearest soft \
        --factors 1/8 1/4 --seeds 0 --output output/evidence_hrnet_w48

``results/hrnet_w48_gpu.sh`` runs that grid on one GPU, two runs side by side. Settings follow the
other evidence recipes (``_evidence.py``: batch 8, AdamW, cosine with 5% warm-up, one evaluation at the
end); 600 iterations keep the six runs within minutes on one GPU, far from the paper's 80k with ImageNet
weights, so this measures the label targets on a short schedule, not the paper's absolute numbers.
"""

from ..common.models.hrnet_w48 import model
from ._evidence import dataloader, lr_multiplier, optimizer, train

dataloader.train.dataset = "toycity_1024x2048_sem_seg_train"
dataloader.test.dataset = "toycity_1024x2048_sem_seg_val"
dataloader.train.num_workers = 6  # decoding a 1024 x 2048 PNG costs about as much as a GPU step
dataloader.test.num_workers = 4

model.num_classes = 19

optimizer.lr = 1e-3

train.max_iter = 600
train.checkpointer.period = 600
train.amp.enabled = True  # bf16 on CUDA; ignored on CPU
train.cudnn_benchmark = True  # the input size is fixed: the crop is the whole image at the factor
train.output_dir = (
    "./output/evidence_hrnet_w48_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
