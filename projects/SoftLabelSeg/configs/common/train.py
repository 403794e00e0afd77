"""Training-loop settings shared by every recipe (detectron2's key names where they exist).

``seed``: python/numpy/torch seed (+ rank); -1 draws one at random (logged).
``device``: "cuda" when CUDA is available, else "cpu", decided when the recipe loads (a real device string,
as detectron2's tools need); override with ``train.device=cpu`` (the project's engine also takes "auto").
``grad_accum_steps``: loader batches per optimizer step; ``clip_grad_norm``: max global grad norm or None.
``test``: evaluation-time wrappers, relative to the eval mapper's test image: ``flip``, ``scales`` (TTA),
``sliding_window`` = ``{"crop": [h, w], "stride": [h, w]}`` in test-image pixels, or None.
"""

import torch

train = dict(
    output_dir="./output",
    init_checkpoint="",
    max_iter=80000,
    amp=dict(enabled=False, precision="bf16"),  # CUDA only; "fp16" adds a GradScaler
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    checkpointer=dict(period=5000, max_to_keep=5),
    eval_period=5000,
    log_period=20,
    device="cuda" if torch.cuda.is_available() else "cpu",
    seed=0,
    grad_accum_steps=1,
    clip_grad_norm=None,
    cudnn_benchmark=False,
    test=dict(flip=False, scales=[1.0], sliding_window=None),
)
