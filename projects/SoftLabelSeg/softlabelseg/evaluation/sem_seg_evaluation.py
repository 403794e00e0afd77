"""Full-resolution semantic-segmentation evaluator (detectron2's SemSegEvaluator contract)."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import torch
from tabulate import tabulate

from ..utils import comm
from ..utils.fileio import atomic_write
from .evaluator import DatasetEvaluator
from .metrics import confusion_matrix, metrics_from_confusion, nan_to_none

__all__ = ["SemSegEvaluator", "write_json_atomic", "format_results_table", "scored_class_groups",
           "scored_class_names"]

logger = logging.getLogger(__name__)


def write_json_atomic(path: str, obj) -> None:
    """Writes ``obj`` as JSON (NaN -> null) to ``path`` atomically."""
    text = json.dumps(nan_to_none(obj), indent=2)
    atomic_write(path, lambda f: f.write(text.encode()))


def scored_class_names(cfg) -> list[str]:
    """The classes a LazyConfig recipe is scored on: its evaluator's dataset's ``stuff_classes`` (the test
    set itself may be a reader call rather than a registered name)."""
    from ..data import MetadataCatalog

    return list(MetadataCatalog.get(cfg.dataloader.evaluator.dataset_name).stuff_classes)


def scored_class_groups(cfg) -> dict[str, tuple[str, ...]]:
    """The class groups (``thin``, ``stuff``) the evidence tables report for a recipe's evaluator dataset."""
    from ..data import MetadataCatalog, class_groups

    return class_groups(MetadataCatalog.get(cfg.dataloader.evaluator.dataset_name))


def format_results_table(res: dict, class_names: list[str]) -> str:
    """Per-class IoU/ACC table followed by the summary metrics (percent)."""
    rows = [[n, res.get(f"IoU-{n}", float("nan")), res.get(f"ACC-{n}", float("nan"))] for n in class_names]
    per_class = tabulate(rows, headers=["class", "IoU", "ACC"], floatfmt=".2f", tablefmt="pipe")
    summary = tabulate(
        [[res["mIoU"], res["fwIoU"], res["mACC"], res["pACC"]]],
        headers=["mIoU", "fwIoU", "mACC", "pACC"],
        floatfmt=".2f",
        tablefmt="pipe",
    )
    return per_class + "\n\n" + summary


class SemSegEvaluator(DatasetEvaluator):
    """Confusion matrix over a dataset at full label resolution, summarised as IoU/ACC metrics.

    Ground truth comes from ``input["sem_seg"]`` (the eval mapper's full-resolution int64 (H, W) train-id
    label) or, when absent, from reading ``input["sem_seg_file_name"]`` (through the record's
    ``label_lut`` when it has one). The prediction is
    ``output["sem_seg_labels"]`` (H, W) or the argmax of ``output["sem_seg"]`` (C, H, W), at the
    label's size. Under DDP the matrices of all
    ranks are summed (all_reduce) in ``evaluate``; the main rank prints the table and writes
    ``<output_dir>/sem_seg_evaluation.json``.

    Args:
        dataset_name: catalog name; metadata gives class names, colours and the ignore value.
        output_dir: where the JSON and optional predictions go (None: nothing written).
        num_classes, class_names, ignore_label: override the metadata (used by tests / custom data).
        write_labelids: write Cityscapes ``*_labelIds.png`` (submission layout) under
            ``cityscapes_submission/``.
        write_overlays: write colourised overlays under ``overlays/`` (at most ``max_overlays`` images).
    """

    def __init__(
        self,
        dataset_name: str | None = None,
        output_dir: str | None = None,
        *,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        ignore_label: int | None = None,
        write_labelids: bool = False,
        write_overlays: bool = False,
        max_overlays: int = 50,
        distributed: bool = True,
    ):
        meta = _metadata(dataset_name) if dataset_name else None
        names = class_names or (getattr(meta, "stuff_classes", None) if meta else None) or []
        names = [str(n) for n in names]
        if num_classes is None:
            num_classes = getattr(meta, "num_classes", None) or len(names)
        if not num_classes:
            raise ValueError(f"cannot tell the number of classes of {dataset_name!r}; pass num_classes")
        self.num_classes = int(num_classes)
        if len(names) != self.num_classes:
            names = [str(i) for i in range(self.num_classes)]
        self.class_names = names
        if ignore_label is None:
            ignore_label = getattr(meta, "ignore_label", 255)
        self.ignore_label = int(ignore_label)
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self.distributed = distributed
        self._writers = []
        if output_dir and write_labelids:
            from .writers import CityscapesLabelIdsWriter

            self._writers.append(CityscapesLabelIdsWriter(os.path.join(output_dir, "cityscapes_submission")))
        if output_dir and write_overlays:
            from .writers import OverlayWriter

            colors = getattr(meta, "stuff_colors", None)
            self._writers.append(OverlayWriter(os.path.join(output_dir, "overlays"), colors, max_overlays))
        self.reset()

    def reset(self):
        self._conf = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self._conf_plain = torch.zeros_like(self._conf)  # a calibrated model's argmax without its offsets
        self._count = 0
        self._skipped: dict[str, str] = {}

    def note_skipped(self, skipped: dict[str, str]) -> None:
        """Inputs the loader could not read (file -> reason); written to the JSON as ``skipped_inputs``."""
        self._skipped.update(skipped)

    def _ground_truth(self, inp) -> torch.Tensor:
        gt = inp.get("sem_seg")
        if isinstance(gt, torch.Tensor) and gt.dim() == 2 and not gt.is_floating_point():
            return gt
        if isinstance(gt, np.ndarray) and gt.ndim == 2:
            return torch.from_numpy(gt.astype(np.int64))
        if "sem_seg_file_name" not in inp:
            raise KeyError("evaluation input has neither a full-resolution 'sem_seg' nor 'sem_seg_file_name'")
        from softlabelseg.data import read_label

        # the loaders' reader: raw ids -> train ids through the record's table, when its dataset has one
        return torch.from_numpy(read_label(inp["sem_seg_file_name"], inp.get("label_lut")).astype(np.int64))

    def process(self, inputs, outputs):
        """inputs: list of mapper dicts; outputs: list of ``{"sem_seg": (C, H, W)}`` scores or
        ``{"sem_seg_labels": (H, W)}`` top-1 labels (with ``"sem_seg_labels_plain"``: a calibrated model's
        labels without its class offsets, scored beside them)."""
        for inp, out in zip(inputs, outputs, strict=True):
            pred = out["sem_seg_labels"] if "sem_seg_labels" in out else out["sem_seg"].argmax(dim=0)
            gt = self._ground_truth(inp)
            try:
                conf = confusion_matrix(pred, gt, self.num_classes, self.ignore_label)
                if "sem_seg_labels_plain" in out:
                    self._conf_plain += confusion_matrix(out["sem_seg_labels_plain"], gt, self.num_classes,
                                                         self.ignore_label).cpu()
            except ValueError as e:
                raise ValueError(f"{inp.get('file_name', '<input>')}: {e}") from None
            self._conf += conf.cpu()
            self._count += 1
            for w in self._writers:
                w.write(inp, pred.cpu().numpy().astype(np.uint8))

    def confusion(self, plain: bool = False) -> torch.Tensor:
        """The (C, C) matrix summed over ranks (collective call under DDP); ``plain``: that of the argmax
        without class offsets (all zero when the model has none)."""
        conf = self._conf_plain if plain else self._conf
        if self.distributed:
            return comm.all_reduce_sum(conf)
        return conf.clone()

    def _all_skipped(self) -> dict[str, str]:
        if not (self.distributed and comm.is_distributed()):
            return dict(self._skipped)
        merged = {}
        for part in comm.all_gather_object(self._skipped):
            merged.update(part)
        return merged

    def evaluate(self):
        """``{"sem_seg": metrics}`` of the predictions (for a calibrated model: with its class offsets, what
        it serves), plus ``"sem_seg_without_offsets"`` when the plain argmax was scored too."""
        conf, conf_plain = self.confusion(), self.confusion(plain=True)
        skipped = self._all_skipped()  # collective under DDP, like confusion()
        if int(conf.sum()) == 0:
            logger.warning(f"SemSegEvaluator on {self.dataset_name}: no labelled pixel was evaluated")
        res = metrics_from_confusion(conf.numpy(), self.class_names)
        plain = None
        if int(conf_plain.sum()):
            plain = metrics_from_confusion(conf_plain.numpy(), self.class_names)
        main = comm.is_main_process()
        if main:
            title = f"Semantic segmentation on {self.dataset_name or 'dataset'} at full resolution"
            if plain is not None:
                logger.info(f"{title}, argmax without the class offsets:\n"
                            + format_results_table(plain, self.class_names))
                title += ", with the class offsets the model carries"
            logger.info(f"{title}:\n" + format_results_table(res, self.class_names))
            if skipped:
                logger.warning(f"{len(skipped)} unreadable input(s) were left out of these metrics")
            if self.output_dir:
                payload = {
                    "dataset": self.dataset_name,
                    "metrics": res,
                    "class_names": self.class_names,
                    "confusion_matrix": conf.tolist(),
                    "skipped_inputs": skipped,
                }
                if plain is not None:
                    payload["metrics_without_offsets"] = plain
                    payload["confusion_matrix_without_offsets"] = conf_plain.tolist()
                write_json_atomic(os.path.join(self.output_dir, "sem_seg_evaluation.json"), payload)
        return {"sem_seg": res} if plain is None else {"sem_seg": res, "sem_seg_without_offsets": plain}


def _metadata(name: str):
    """Catalog metadata for ``name`` (None when the data package or the name is unavailable)."""
    try:
        from softlabelseg.data import MetadataCatalog
    except ImportError:
        return None
    try:
        return MetadataCatalog.get(name)
    except (KeyError, AttributeError):
        return None
