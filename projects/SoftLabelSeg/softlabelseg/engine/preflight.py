"""Checks run before a job writes anything: config values, datasets of both splits, the weights an
evaluation would score, and the state of the output folder.

Every failure raises an error that names the key, dataset, file or folder and says what to do, so a typo
found here costs seconds instead of a finished training run.
"""

from __future__ import annotations

import difflib
import glob
import logging
import os

from omegaconf import OmegaConf

from ..data.decode import BadSampleError
from ..utils import comm
from ..utils.fileio import folder_problem
from .train_config import ConfigValueError, check_train_config  # the config-value check is the schema's

__all__ = ["ConfigValueError", "OutputDirError", "check_train_config", "check_datasets", "check_output_dir",
           "check_test_files",
           "eval_dir", "remove_earlier_run", "run_artefacts", "EVAL_JSON"]

logger = logging.getLogger(__name__)
EVAL_JSON = "sem_seg_evaluation.json"
# The files a run writes under these names (and only these): what makes a folder "an earlier run", and all
# that --overwrite removes. A log, ablation_run.log or a file of the user's (model_best.pth) is neither.
_RUN_FILES = ("config.yaml", "metrics.json", "last_checkpoint", "model_final.pth",
              "model_" + "[0-9]" * 7 + ".pth", "events.out.tfevents.*", os.path.join("inference", EVAL_JSON))


class OutputDirError(FileExistsError):
    """The output folder holds an earlier run that this command would overwrite."""


def _dataset_names(node) -> list[str] | None:
    if isinstance(node, str):
        return [node]
    if OmegaConf.is_list(node) or isinstance(node, (list, tuple)):
        items = list(node)
        if items and all(isinstance(x, str) for x in items):
            return items
    return None  # records given inline: nothing to look up


def check_datasets(cfg, eval_only: bool = False) -> None:
    """Every dataset name the job will read (training split unless ``eval_only``; the test split when an
    evaluator is configured) is registered and lists at least one sample."""
    from softlabelseg.data import DatasetCatalog, get_dataset_dicts
    from softlabelseg.data.datasets.data_file import folder_class_mismatch

    splits = [] if eval_only else ["train"]
    if OmegaConf.select(cfg, "dataloader.evaluator", default=None) is not None or eval_only:
        splits.append("test")
    keys = {f"dataloader.{split}.dataset": split for split in splits}
    named = {key: _dataset_names(OmegaConf.select(cfg, key, default=None)) or [] for key in keys}
    for key, names in named.items():  # every name first: a typo in the test split costs no listing
        for name in names:
            if name not in DatasetCatalog:
                close = difflib.get_close_matches(name, DatasetCatalog.list(), n=3)
                hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
                raise KeyError(f"{key}={name!r} is not a registered dataset; {hint}registered: "
                               f"{', '.join(DatasetCatalog.list())}")
    test_names = named.get("dataloader.test.dataset") or []
    ev_name = OmegaConf.select(cfg, "dataloader.evaluator.dataset_name", default=None)
    if isinstance(ev_name, str) and len(test_names) == 1 and ev_name != test_names[0]:
        raise ConfigValueError(
            f"dataloader.evaluator.dataset_name={ev_name!r} but dataloader.test.dataset={test_names[0]!r}: "
            f"the evaluator would take class names and the ignore value from another dataset. Set "
            f"dataloader.evaluator.dataset_name={test_names[0]} too (a config with the name written out, "
            f"not as ${{..test.dataset}}, does not follow an override of the test dataset)."
        )
    mismatch = folder_class_mismatch(cfg, eval_only)  # a data file's class list vs the config's class counts
    if mismatch:
        raise ConfigValueError(mismatch)
    for key, names in named.items():
        if names:
            skip = bool(OmegaConf.select(cfg, f"dataloader.{keys[key]}.skip_bad_samples", default=False))
            n = len(get_dataset_dicts(names, skip_bad=skip))
            logger.info(f"{key}: {', '.join(names)} ({n} samples)")


def check_test_files(cfg) -> None:
    """Decodes every image and label of the split the run will be scored on (``dataloader.test``, when an
    evaluator is configured) and checks the label values, so a truncated file or a value the dataset does
    not define stops the run before training, not after it. Files checked before are skipped (cache). With
    ``dataloader.test.skip_bad_samples`` the bad files are reported and the run goes on without them."""
    if OmegaConf.select(cfg, "dataloader.evaluator", default=None) is None:
        return
    from softlabelseg.config import instantiate
    from softlabelseg.data import MetadataCatalog, get_dataset_dicts
    from softlabelseg.data.file_check import check_records

    node = OmegaConf.select(cfg, "dataloader.test.dataset", default=None)
    if node is None:
        return  # a loader that lists its own samples: nothing to check here
    names = _dataset_names(node)
    skip = bool(OmegaConf.select(cfg, "dataloader.test.skip_bad_samples", default=False))
    records = get_dataset_dicts(names if names else instantiate(node), skip_bad=skip)
    num_classes = OmegaConf.select(cfg, "dataloader.test.mapper.num_classes", default=None)
    if not isinstance(num_classes, int):
        return  # a mapper without a class count: nothing to check the labels against
    ev_name = OmegaConf.select(cfg, "dataloader.evaluator.dataset_name", default=None)
    ignore = int(MetadataCatalog.get(ev_name).get("ignore_label", 255)) if isinstance(ev_name, str) else 255
    rgb = bool(OmegaConf.select(cfg, "dataloader.test.mapper.convert_to_rgb", default=False))
    errors = check_records(records, num_classes, ignore, convert_to_rgb=rgb)
    if not errors:
        return
    more = f"\n  ... ({len(errors) - 10} more)" if len(errors) > 10 else ""
    shown = "\n  ".join(str(e) for e in errors[:10]) + more
    if skip:
        logger.warning(f"{len(errors)} bad test sample(s) will be skipped (dataloader.test.skip_bad_samples):"
                       f"\n  {shown}")
        return
    raise BadSampleError(
        errors[0].path,
        f"is one of {len(errors)} bad file(s) of the test split, found before training:\n  {shown}"
        "\n  Fix or remove them, set dataloader.test.skip_bad_samples=True to score without them, or pass "
        "--skip-data-check to leave this check out.")


def eval_dir(cfg) -> str | None:
    """Results folder: ``dataloader.evaluator.output_dir``, else ``<train.output_dir>/inference``."""
    explicit = OmegaConf.select(cfg, "dataloader.evaluator.output_dir", default=None)
    if explicit:
        return explicit
    out = OmegaConf.select(cfg, "train.output_dir", default=None)
    return os.path.join(out, "inference") if out else None


def eval_dir_outside_run(cfg) -> str | None:
    """The evaluation folder when it lies outside ``train.output_dir`` (an explicit
    ``dataloader.evaluator.output_dir``, e.g. one written out in a reused ``config.yaml``), else None."""
    folder, out = eval_dir(cfg), OmegaConf.select(cfg, "train.output_dir", default=None)
    if not folder or not out:
        return None
    folder, out = os.path.abspath(folder), os.path.abspath(out)
    return None if os.path.commonpath([folder, out]) == out else folder


def run_artefacts(folder: str) -> list[str]:
    """Files of an earlier run in ``folder``: config, metrics, checkpoints, TensorBoard events, evaluation."""
    if not folder or not os.path.isdir(folder):
        return []
    found = []
    for pattern in _RUN_FILES:
        found += sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))
    return found


def check_output_dir(cfg, *, resume: bool, overwrite: bool, eval_only: bool) -> list[str]:
    """Refuses to start where an earlier run (training) or an earlier evaluation (``eval_only``) would be
    overwritten, unless ``overwrite``, and where ``train.output_dir`` is not a folder. Writes nothing;
    returns the earlier run's files that :func:`remove_earlier_run` deletes (``overwrite``; an earlier
    evaluation JSON is not listed: it stays until the new one atomically replaces it).

    ``--resume`` continues the run in the folder, so it is always allowed.
    """
    out = OmegaConf.select(cfg, "train.output_dir", default=None)
    for key, folder in (("train.output_dir", out), ("dataloader.evaluator.output_dir", eval_dir(cfg))):
        if folder and os.path.lexists(folder) and not os.path.isdir(folder):
            raise OutputDirError(f"{key}={folder!r} exists and is not a folder; choose another {key}")
        problem = folder_problem(folder) if folder else None
        if problem:
            raise OutputDirError(f"{key}={folder!r} cannot hold the run's files: {problem}. Choose another "
                                 f"{key}.")
    if eval_only:
        holder = eval_dir(cfg) or ""
        target = os.path.join(holder, EVAL_JSON)
        old = [target] if os.path.isfile(target) else []
        what, advice = "an earlier evaluation", "train.output_dir=<new folder> (results go to its inference/)"
    else:
        holder = out
        old = [] if resume else run_artefacts(out)
        what, advice = "an earlier run", "--resume to continue it, or train.output_dir=<new folder>"
    shown = ", ".join(os.path.relpath(p, holder or ".") for p in old[:6]) + (" ..." if len(old) > 6 else "")
    init = OmegaConf.select(cfg, "train.init_checkpoint", default=None)
    read = [p for p in old if init and os.path.exists(init) and os.path.samefile(init, p)]
    if read and not eval_only:
        raise OutputDirError(
            f"train.init_checkpoint={init} is a file of the earlier run in {holder}, which "
            + ("--overwrite would delete before reading it" if overwrite else "this run would replace")
            + f". Copy it out of the folder first (cp {init} <elsewhere>.pth) and point "
            "train.init_checkpoint there, or choose another train.output_dir.")
    if old and not overwrite:
        raise OutputDirError(
            f"{holder} holds {what} ({shown}) that this command would overwrite. Pass --overwrite to "
            f"replace it, or {advice}."
        )
    return [] if eval_only else old


def remove_earlier_run(files: list[str], folder: str) -> None:
    """Deletes ``files`` (from :func:`check_output_dir`, main rank) once the run holds its folder."""
    if files and comm.is_main_process():
        for path in files:
            if os.path.isfile(path):
                os.remove(path)
        shown = ", ".join(os.path.relpath(p, folder) for p in files[:6]) + (" ..." if len(files) > 6 else "")
        logger.warning(f"--overwrite: removed {len(files)} file(s) of an earlier run in {folder}: {shown}")
    comm.synchronize()  # every rank, so ranks that saw a cleaned folder stay in step
