#!/usr/bin/env python
"""Train or evaluate a SoftLabelSeg LazyConfig recipe (detectron2's tools/lazyconfig_train_net.py).

Usage::

    python tools/lazyconfig_train_net.py --config-file projects/SoftLabelSeg/configs/toycity/tiny_soft.py
    python tools/lazyconfig_train_net.py --config-file <recipe> train.max_iter=2000 train.output_dir=out/x
    python tools/lazyconfig_train_net.py --config-file <recipe> --resume          # continue out/x exactly
    python tools/lazyconfig_train_net.py --config-file <recipe> --overwrite       # replace the run in out/x
    python tools/lazyconfig_train_net.py --config-file <recipe> --eval-only \
        train.init_checkpoint=out/x/model_final.pth train.output_dir=out/x_eval
    python tools/lazyconfig_train_net.py --config-file <recipe> --num-gpus 4      # spawned DDP on one machine
    torchrun --nnodes 2 --nproc-per-node 8 ... tools/lazyconfig_train_net.py --config-file <recipe>

Trailing ``key=value`` pairs override the config (hydra syntax; ``+key=value`` adds a key). Common keys:
``train.max_iter``, ``train.output_dir``, ``train.eval_period``, ``train.log_period``,
``train.checkpointer.period``, ``train.checkpointer.max_to_keep``, ``train.init_checkpoint``,
``train.device`` (auto/cuda/cpu), ``train.amp.enabled``, ``train.seed``,
``dataloader.train.total_batch_size``.
A LazyConfig ``.py`` file is Python and runs when loaded: only use recipes you trust.

Output folder (``train.output_dir``)::

    config.yaml                 the config of this run, ${...} kept (reload it with --config-file + overrides)
    log.txt                     the console log of rank 0 (log.txt.rank<N> for other ranks)
    metrics.json                JSON lines, one object per logged iteration: losses, lr, time, data_time,
                                max_mem_mb (CUDA) or max_rss_mb (CPU), evaluation results (sem_seg/mIoU, ...)
    events.out.tfevents.*       TensorBoard scalars (tensorboard --logdir <output_dir>)
    model_0004999.pth           periodic checkpoints after 5000 iterations etc. (train.checkpointer.period;
                                the newest train.checkpointer.max_to_keep are kept)
    model_final.pth             weights + trainer state at train.max_iter
    last_checkpoint             name of the newest checkpoint: what --resume continues from
    inference/sem_seg_evaluation.json   latest full-resolution evaluation: metrics, classes, confusion matrix
    inference/cityscapes_submission/<city>/<image>_labelIds.png   (dataloader.evaluator.write_labelids=True)
    inference/overlays/<image>.png      colourised predictions (dataloader.evaluator.write_overlays=True)

Checkpoints are ``{"model": state_dict, "trainer": {...}, "iteration": n, "meta": {...}}`` and load with
``torch.load(weights_only=True)``; only states whose tensors are all finite are saved.

An existing run is never overwritten silently: a folder holding config.yaml, metrics.json, checkpoints,
TensorBoard events or inference/sem_seg_evaluation.json is refused unless ``--resume`` (continue it; a
missing or broken checkpoint falls back to the newest good one) or ``--overwrite`` (delete those files, then
start afresh). A folder holding only logs (e.g. a pre-created ``ablation_run.log``) is not a run.
``--eval-only`` needs weights that load strictly (``train.init_checkpoint``, or ``--resume``), saves its
config as inference/config.yaml and keeps an earlier evaluation JSON unless ``--overwrite``. Config values,
both datasets and the folder are checked before anything is written.
"""

import sys

from softlabelseg.engine.cli import console_main, do_test, do_train, main, run

__all__ = ["do_test", "do_train", "run", "main"]

if __name__ == "__main__":
    sys.exit(console_main())
