"""The project inside detectron2: its datasets in detectron2's catalogs and a detectron2 training engine.

This is the only module that imports detectron2 (optional; ``pip install --no-build-isolation
'git+https://github.com/facebookresearch/detectron2@02b5c4e295e990042a714712c21dc79b731e8833'``).

- :func:`register_datasets` makes every project dataset visible in detectron2's ``DatasetCatalog`` and
  ``MetadataCatalog`` as ``softlabelseg_<name>`` (detectron2 has built-ins named like ours), with the
  metadata its ``SemSegEvaluator`` and ``Visualizer`` read; :func:`d2_sem_seg_evaluator` builds
  detectron2's evaluator so that raw-id label files go through the project's label tables.
- ``--engine detectron2`` (:data:`ENGINE`): the project's one training path (``engine.training``) on
  detectron2's ``TrainerBase`` loop, hooks, ``DetectionCheckpointer``, ``EventStorage``, writers
  (``metrics.json``, TensorBoard) and ``inference_on_dataset``, around the project's model, loader,
  evaluator and training step (which brings gradient accumulation, clipping, autocast and the resumable RNG
  and data position that detectron2's own trainer lacks).
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

from .data import DatasetCatalog, MetadataCatalog, read_label
from .engine.checkpoint import Checkpointer, apply_calibration
from .engine.training import Engine
from .utils import comm

__all__ = ["D2_PREFIX", "ENGINE", "Detectron2Engine", "Detectron2Trainer", "d2_name", "d2_sem_seg_evaluator",
           "register_datasets"]

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
    every rank builds the state (it gathers the RNG of all ranks), the main rank writes it atomically.
    ``--resume`` picks its file as the native engine does (the newest good checkpoint, the ones passed
    over reported)."""

    meta: dict = {}  # facts saved beside the weights (the resolution factors export reads)
    resumed_from: str | None = None
    max_abs_weight: float | None = None

    def _project(self) -> Checkpointer:
        writer = Checkpointer(self.model, self.save_dir, **self.checkpointables)
        writer.meta, writer.max_abs_weight = self.meta, self.max_abs_weight
        return writer

    def save(self, name: str, **kwargs) -> None:
        self._project().save(name, **kwargs)

    def load(self, path, checkpointables=None):
        rest = super().load(path, checkpointables)
        apply_calibration(self.model, rest)  # detectron2 leaves entries it does not know to the caller
        return rest

    def resume_or_load(self, path: str, *, resume: bool = True, found=None):
        self.resumed_from = None
        if resume:
            found = found if found is not None else self._project().find_resumable()
            found.log()
            cand = found.path
            if cand is not None:
                self.resumed_from = cand
                return self.load(cand)
        return self.load(path, checkpointables=[])

    def get_checkpoint_file(self):
        return self._project().get_checkpoint_file()

    def set_aside(self, iteration: int):
        return self._project().set_aside(iteration)


class _ProjectHook(hooks.HookBase):
    """A project hook (same methods, ``trainer`` attribute) registered in detectron2's loop."""

    def __init__(self, hook):
        self.hook = hook

    def __setattr__(self, name, value):
        if name == "trainer":
            self.hook.trainer = value
        super().__setattr__(name, value)

    def before_train(self):
        self.hook.before_train()

    def after_train(self):
        self.hook.after_train()

    def before_step(self):
        self.hook.before_step()

    def after_step(self):
        self.hook.after_step()


class Detectron2Engine(Engine):
    """detectron2's ``TrainerBase`` loop, hooks (``IterationTimer``, ``LRScheduler``,
    ``PeriodicCheckpointer``, ``EvalHook``, ``PeriodicWriter``, ``TorchMemoryStats`` on CUDA),
    ``DetectionCheckpointer``, writers and ``inference_on_dataset``; the project's memory (CPU) and
    skipped-sample hooks, which detectron2 has no counterpart for, run in its loop."""

    name = "detectron2"

    def trainer(self, step):
        return Detectron2Trainer(step)

    def checkpointer(self, model, output_dir, trainer):
        return _Checkpointer(model, output_dir, trainer=trainer)

    def timer(self):
        return hooks.IterationTimer()

    def lr_scheduler(self, optimizer, multiplier, max_iter):
        return hooks.LRScheduler(scheduler=multiplier)

    def project_hook(self, hook):
        return _ProjectHook(hook)

    def memory(self, device):
        if device.type == "cuda":
            return hooks.TorchMemoryStats()
        return _ProjectHook(Engine.memory(self, device))

    def skipped_samples(self, period):
        return _ProjectHook(Engine.skipped_samples(self, period))

    def periodic_checkpointer(self, checkpointer, period, max_iter, max_to_keep):
        # on every rank: saving gathers the RNG states of all ranks
        return hooks.PeriodicCheckpointer(checkpointer, period, max_iter=max_iter,
                                          max_to_keep=max_to_keep if comm.is_main_process() else None)

    def eval_hook(self, period, function):
        return hooks.EvalHook(period, function)

    def writer(self, output_dir, max_iter, period):
        return hooks.PeriodicWriter(default_writers(output_dir, max_iter), period=period)

    def inference(self, model, loader, evaluator):
        results = inference_on_dataset(model, loader, evaluator)
        if comm.is_main_process():
            print_csv_format(results)
        return results


ENGINE = Detectron2Engine()
