"""The ToyCity recipe pointed at a tiny generated set: command-line overrides (no tests here)."""

READER = "softlabelseg.data.datasets.load_cityscapes_semantic"


def overrides(root, out, *extra):
    """The recipe unchanged, pointed at the tiny set (records via the Cityscapes-layout reader)."""
    return [
        f"dataloader.train.dataset={{_target_:{READER},root:'{root}',split:train}}",
        f"dataloader.test.dataset={{_target_:{READER},root:'{root}',split:val}}",
        "dataloader.evaluator.dataset_name=toycity_sem_seg_val",
        "dataloader.train.total_batch_size=4",
        "train.max_iter=6",
        "train.checkpointer.period=2",
        "train.eval_period=0",
        "train.log_period=2",
        f"train.output_dir={out}",
        *extra,
    ]
