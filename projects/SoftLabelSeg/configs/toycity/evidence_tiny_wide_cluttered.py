"""The stride-1 evidence recipe (``evidence_tiny_wide.py``, unchanged) on cluttered ToyCity 512 x 1024:
twice the street objects, ragged tree canopies, and labels off the image by a smooth 1-pixel RMS
displacement (annotation error). The style was fixed before any run on it (``data/toycity/scene.py``).

    C=projects/SoftLabelSeg/configs/toycity/evidence_tiny_wide_cluttered.py
    python tools/run_ablation.py --config-file $C --variants nearest soft ...
"""

from .evidence_tiny_wide import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset = "toycity_512x1024_cluttered_sem_seg_train"
dataloader.test.dataset = "toycity_512x1024_cluttered_sem_seg_val"

train.output_dir = (
    "./output/evidence_cluttered_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
