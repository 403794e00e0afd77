"""The project inside detectron2: its datasets in detectron2's catalogs and a detectron2 training engine.

This is the only module that imports detectron2 (optional; ``pip install --no-build-isolation
'git+https://github.com/facebookresearch/detectron2@02b5c4e295e990042a714712c21dc79b731e8833'``).

- :func:`register_datasets` makes every project dataset visible in detectron2's ``DatasetCatalog`` and
  ``MetadataCatalog`` as ``softlabelseg_<name>`` (detectron2 has built-ins named like ours), with the
  metadata its ``SemSegEvaluator`` and ``Visualizer`` read; :func:`d2_sem_seg_evaluator` builds
  detectron2's evaluator so that raw-id label files go through the project's label tables.
- ``--engine detectron2`` (:func:`do_train`, :func:`do_test`): detectron2's ``TrainerBase`` loop, its hooks
  (``IterationTimer``, ``LRScheduler``, ``PeriodicCheckpointer``, ``EvalHook``, ``PeriodicWriter``),
  ``DetectionCheckpointer``, ``EventStorage``, writers (``metrics.json``, TensorBoard) and
  ``inference_on_dataset``, around the project's model, loader, evaluator and training step (which
  brings gradient accumulation, clipping, autocast and the resumable RNG and data position that
  detectron2's own trainer lacks). Every ``train.*`` key is honoured; an unknown one is an error.
"""

from __future__ import annotations

import logging

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog as D2DatasetCatalog
from detectron2.data import Metadata as D2Metadata
from detectron2.data import MetadataCatalog as D2MetadataCatalog
from detectron2.engine import TrainerBase, default_writers, hooks
from detectron2.evaluation import SemSegEvaluator as D2SemSegEvaluator
from detectron2.evaluation import inference_on_dataset, print_csv_format
from omegaconf import OmegaConf

from .config import instantiate
from .data import DatasetCatalog, MetadataCatalog, read_label
from .engine.checkpoint import Checkpointer
from .utils import comm

__all__ = [
    "D2_PREFIX", "Detectron2Trainer", "TRAIN_KEYS", "check_train_keys", "d2_name", "d2_sem_seg_evaluator",
    "do_test", "do_train", "register_datasets",
]

logger = logging.getLogger("softlabelseg.engine")
D2_PREFIX = "softlabelseg_"

# ---- datasets -----------------------------------------------------------------------------------------


def d2_name(name: str) -> str:
    """The name of project dataset ``name`` in detectron2's catalogs."""
    return name if name.startswith(D2_PREFIX) else D2_PREFIX + name


class _ProjectMetadata(D2Metadata):
    """detectron2 metadata that reads what it does not hold from the project's catalog (attributes the
    project loads lazily, such as Mapillary's class table, are read when first asked for)."""

    def __getattr__(self, key):
        if key.startswith("__") or key in ("name", "source"):
            raise AttributeError(key)
        source = self.__dict__.get("source")
        value = getattr(MetadataCatalog.get(source), key, None) if source else None
        if value is None:
            return super().__getattr__(key)
        return value


def register_datasets() -> list[str]:
    """Registers every project dataset in detectron2's catalogs as ``softlabelseg_<name>`` (idempotent).

    Records are the project's (``file_name``, ``sem_seg_file_name``, ``height``, ``width``, ``image_id``,
    ``label_lut`` for raw-id label files). Metadata: ``stuff_classes``, ``stuff_colors``,
    ``ignore_label``, ``evaluator_type="sem_seg"``, ``num_classes``, ``label_lut``, ``label_mapping``.
    Returns the detectron2 names.
    """
    names = []
    for name in DatasetCatalog.list():
        d2 = d2_name(name)
        names.append(d2)
        if d2 in D2DatasetCatalog.list():
            continue
        D2DatasetCatalog.register(d2, lambda n=name: DatasetCatalog.get(n))
        meta = _ProjectMetadata(name=d2)
        meta.__dict__["source"] = name
        for key, value in MetadataCatalog.get(name).as_dict().items():
            if key != "name":
                meta.__dict__[key] = list(value) if key == "stuff_colors" else value
        D2MetadataCatalog[d2] = meta
    return names


def d2_sem_seg_evaluator(dataset_name: str, output_dir: str | None = None, distributed: bool = True):
    """detectron2's ``SemSegEvaluator`` on a project dataset, reading ground truth through the record's
    ``label_lut`` (Cityscapes ``*_labelIds.png``, ADE20K, Mapillary), as the project's evaluator does."""
    register_datasets()
    d2 = d2_name(dataset_name)
    luts = {r["sem_seg_file_name"]: r.get("label_lut") for r in D2DatasetCatalog.get(d2)}

    def load_train_ids(path, dtype=int):
        return read_label(path, luts.get(path)).astype(dtype)

    return D2SemSegEvaluator(d2, distributed=distributed, output_dir=output_dir,
                             sem_seg_loading_fn=load_train_ids)


# ---- engine -------------------------------------------------------------------------------------------

TRAIN_KEYS = frozenset({
    "output_dir", "init_checkpoint", "max_iter", "amp.enabled", "amp.precision", "ddp.broadcast_buffers",
    "ddp.find_unused_parameters", "ddp.fp16_compression", "checkpointer.period", "checkpointer.max_to_keep",
    "eval_period", "log_period", "device", "seed", "grad_accum_steps", "clip_grad_norm", "cudnn_benchmark",
    "test.flip", "test.scales", "test.sliding_window",
})


def check_train_keys(cfg) -> None:
    """Raises KeyError naming every ``train.*`` key this engine does not know (rather than ignore it)."""
    def leaves(node, prefix=""):
        for k in node.keys():
            key = f"{prefix}{k}"
            value = node._get_node(k)
            if OmegaConf.is_dict(value) and key not in TRAIN_KEYS and not value._is_none():
                yield from leaves(value, key + ".")
            else:
                yield key

    unknown = sorted(k for k in leaves(cfg.train) if k not in TRAIN_KEYS)
    if unknown:
        raise KeyError(
            f"The detectron2 engine does not know {', '.join('train.' + k for k in unknown)}; it honours "
            f"{', '.join(sorted('train.' + k for k in TRAIN_KEYS))}. Remove the key (~train.<key>) or use "
            "the native engine."
        )


class Detectron2Trainer(TrainerBase):
    """detectron2's training loop and hooks around the project's :class:`TrainStep`.

    Each iteration runs ``step`` against detectron2's ``EventStorage``. The state (iteration, hook
    states, optimizer, grad scaler, RNG of every rank, data position) has the native engine's layout, so
    checkpoints resume under either engine.
    """

    def __init__(self, step):
        super().__init__()
        self.step = step
        self.model, self.optimizer, self.data_loader = step.model, step.optimizer, step.data_loader

    def run_step(self):
        self.step.run(self.storage, self.iter)

    def state_dict(self):
        return {**super().state_dict(), **self.step.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)  # iteration and detectron2's hook states
        self.step.load_state_dict(state)


class _Checkpointer(DetectionCheckpointer):
    """detectron2's checkpointer, loading as detectron2 does, saving through the project's checkpointer:
    every rank builds the state (it gathers the RNG of all ranks), the main rank writes it atomically."""

    meta: dict = {}  # facts saved beside the weights (the resolution factors export reads)

    def save(self, name: str, **kwargs) -> None:
        writer = Checkpointer(self.model, self.save_dir, **self.checkpointables)
        writer.meta = self.meta
        writer.save(name, **kwargs)


def _select(cfg, key, default=None):
    value = OmegaConf.select(cfg, key, default=default)
    return default if value is None else value


def do_test(cfg, model):
    """detectron2's ``inference_on_dataset`` with the project's test loader, test-time wrappers
    (``train.test``) and evaluator (JSON under ``<train.output_dir>/inference``); {} without an evaluator."""
    from .engine.cli import evaluator_config
    from .evaluation import build_test_model

    ev_cfg = evaluator_config(cfg)
    if ev_cfg is None:
        return {}
    test_opts = OmegaConf.to_container(cfg.train.test, resolve=True) if "test" in cfg.train else {}
    results = inference_on_dataset(
        build_test_model(model, **(test_opts or {})), instantiate(cfg.dataloader.test), instantiate(ev_cfg)
    )
    if comm.is_main_process():
        print_csv_format(results)
    return results


def do_train(cfg, model, device, resume: bool = False):
    """Trains ``model`` in detectron2's loop (hooks, checkpointer, writers) with the project's step."""
    from .engine.cli import build_trainer, run_meta

    check_train_keys(cfg)
    max_iter = int(cfg.train.max_iter)
    out = cfg.train.output_dir
    trainer = Detectron2Trainer(build_trainer(cfg, model, device).step)
    checkpointer = _Checkpointer(model, out, trainer=trainer)
    checkpointer.meta = run_meta(cfg)
    main = comm.is_main_process()
    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.TorchMemoryStats() if device.type == "cuda" else None,
        hooks.PeriodicCheckpointer(  # on every rank: saving gathers the RNG states of all ranks
            checkpointer, _select(cfg, "train.checkpointer.period", 5000), max_iter=max_iter,
            max_to_keep=_select(cfg, "train.checkpointer.max_to_keep") if main else None,
        ),
        hooks.EvalHook(_select(cfg, "train.eval_period", 0), lambda: do_test(cfg, model)),
        hooks.PeriodicWriter(default_writers(out, max_iter), period=_select(cfg, "train.log_period", 20))
        if main else None,
    ])
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    # A checkpoint holds the iteration that had just finished.
    start_iter = trainer.iter + 1 if resume and checkpointer.has_checkpoint() else 0
    if start_iter >= max_iter:
        logger.info(f"Checkpoint is at iteration {start_iter} >= train.max_iter={max_iter}: nothing to train")
        return trainer
    trainer.train(start_iter, max_iter)
    return trainer

