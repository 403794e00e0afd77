"""Atomic checkpoints and resume state (model, optimizer, scheduler, scaler, RNG, data position).

A checkpoint is "good" only when every floating-point tensor in it is finite: saving refuses a model or
optimizer state holding inf/NaN (a diverged run stops instead of pointing ``last_checkpoint`` at it), and
``--resume`` skips unreadable or non-finite files, falling back to the newest good one.

A checkpoint is one ``torch.save`` file of plain containers and tensors, so it loads with
``torch.load(weights_only=True)``: ``{"model": state_dict, "iteration": int, ...trainer state}``.
Files are written to a temporary name in the same folder, fsynced and ``os.replace``d, then
``last_checkpoint`` (a one-line text file, as in detectron2) is updated the same way: a crash at any
moment leaves the previous checkpoint and pointer intact.
"""

from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..checkpoint_io import (
    CheckpointError,
    apply_calibration,
    calibration_of,
    exploded_parameters,
    load_weights,
    nonfinite_tensors,
    read_checkpoint,
    read_weights,
    state_dict_mismatch,
    strip_prefix,
)
from ..utils import comm
from ..utils.fileio import atomic_write

__all__ = [
    "Checkpointer",
    "Resumable",
    "CheckpointError",
    "capture_rng_state",
    "restore_rng_state",
    "atomic_save",
    "unwrap_model",
    "nonfinite_tensors",
    "read_checkpoint",
    "state_dict_mismatch",
]  # the readers live in softlabelseg.checkpoint_io (shared with export, the demo and eval-only)

logger = logging.getLogger(__name__)
PERIODIC_NAME = re.compile(r"model_\d{7}\.pth")
FINAL_NAME = "model_final.pth"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def atomic_save(obj, path: str) -> None:
    """``torch.save(obj, path)`` through a temporary file and ``os.replace``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def capture_rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states as weights_only-loadable containers."""
    np_state = np.random.get_state()  # noqa: NPY002 (the global legacy RNG is what we save)
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np_state = (name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached))
    np.random.set_state(np_state)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Resumable:
    """The checkpoint a resumed run continues from (``path`` None: none yet), its content, and what finding
    it passed over, logged when the run resumes (so it reaches the run's own log)."""

    path: str | None
    data: dict | None
    notes: list = field(default_factory=list)  # (logging level, message)

    def log(self) -> None:
        for level, message in self.notes:
            logger.log(level, message)
        self.notes = []


class Checkpointer:
    """Saves and loads ``{"model": ..., **checkpointables}`` in ``save_dir`` (only the main rank writes).

    Args:
        model: the model (DDP wrappers are unwrapped, so keys never carry ``module.``).
        save_dir: output folder; None disables saving.
        checkpointables: objects with ``state_dict()/load_state_dict()`` saved under their keyword (e.g.
            ``trainer=trainer``; the trainer's state holds optimizer, scheduler, scaler, RNG, data position).
    """

    def __init__(self, model: nn.Module, save_dir: str | None = None, **checkpointables):
        self.model = unwrap_model(model)
        self.save_dir = save_dir
        self.checkpointables = checkpointables
        self.resumed_from: str | None = None  # set by resume_or_load when a run is continued
        self.meta: dict = {}  # plain facts saved as "meta" (e.g. the resolution factor), read by export
        self.max_abs_weight: float | None = None  # parameters beyond this: a diverged state (never saved)

    def save(self, name: str, **extra) -> str | None:
        """Writes ``<save_dir>/<name>.pth`` atomically and points ``last_checkpoint`` at it.

        Raises FloatingPointError (on every rank, nothing written) when a tensor of the state is not finite.
        """
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        if self.meta:
            data["meta"] = dict(self.meta)
        calibration = calibration_of(self.model)
        if calibration is not None:
            data["calibration"] = calibration
        data.update(extra)
        bad = nonfinite_tensors(data)
        what = "hold inf/NaN"
        if not bad and self.max_abs_weight is not None:
            bad, what = self.exploded_parameters(data["model"]), f"exceed |{self.max_abs_weight:g}|"
        if int(comm.all_reduce_sum(torch.tensor(len(bad)))):
            shown = ", ".join(bad[:6]) + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else "")
            last = self.get_checkpoint_file()
            raise FloatingPointError(
                f"Not saving {name}: {len(bad)} tensor(s) of the training state {what} on rank "
                f"{comm.get_rank()} ({shown or 'on another rank'}); the run has diverged. "
                "Last good checkpoint: "
                f"{last or 'none written yet'}. Lower optimizer.lr or set train.clip_grad_norm (e.g. 1.0), "
                "then --resume with those overrides (from that checkpoint) or --overwrite (from scratch)."
            )
        if not self.save_dir or not comm.is_main_process():
            return None
        path = os.path.join(self.save_dir, f"{name}.pth")
        logger.info(f"Saving checkpoint to {path}")
        atomic_save(data, path)
        atomic_write(
            os.path.join(self.save_dir, "last_checkpoint"), lambda f: f.write(os.path.basename(path).encode())
        )
        return path

    def _pointer(self) -> str | None:
        """The file name written in ``last_checkpoint`` (None without the pointer)."""
        if not self.save_dir:
            return None
        pointer = os.path.join(self.save_dir, "last_checkpoint")
        if not os.path.isfile(pointer):
            return None
        with open(pointer) as f:
            return f.read().strip()

    def get_checkpoint_file(self) -> str | None:
        """Path named by ``last_checkpoint`` (None when there is none)."""
        name = self._pointer()
        if not name:
            return None
        path = os.path.join(self.save_dir, name)
        return path if os.path.isfile(path) else None

    def has_checkpoint(self) -> bool:
        return self.get_checkpoint_file() is not None

    def list_checkpoints(self) -> list[str]:
        """Resume candidates in ``save_dir``, preferred first: the file named by ``last_checkpoint``, then
        the others by the iteration they hold, newest first (``model_<i>.pth`` holds iteration i + 1;
        ``model_final.pth`` says its own)."""
        if not self.save_dir or not os.path.isdir(self.save_dir):
            return []
        found = [f for f in os.listdir(self.save_dir) if PERIODIC_NAME.fullmatch(f) or f == FINAL_NAME]
        found.sort(key=lambda f: self._iteration_of(f), reverse=True)
        names = [self._pointer() or "", *found]
        paths = [os.path.join(self.save_dir, n) for n in dict.fromkeys(n for n in names if n)]
        return [p for p in paths if os.path.isfile(p)]

    def _iteration_of(self, name: str) -> int:
        """The iteration a checkpoint holds: from a periodic file's name, else read from the file (-1 when
        it cannot be read: such a file is tried last)."""
        if name != FINAL_NAME:
            return int(name[len("model_"):-len(".pth")]) + 1
        try:
            data = torch.load(os.path.join(self.save_dir, name), map_location="cpu", weights_only=True,
                              mmap=True)
            return int(data.get("iteration", -1)) if isinstance(data, dict) else -1
        except Exception:  # noqa: BLE001 - an unreadable file is reported when it is tried
            return -1

    def load(self, path: str, checkpointables: list[str] | None = None, *, strict: bool = False) -> dict:
        """Loads weights and the named checkpointables (default: all) from ``path``.

        ``strict``: the checkpoint must fit the model exactly (missing, unexpected or differently shaped
        keys raise :class:`CheckpointError` naming them, as do non-finite weights); otherwise mismatches
        are logged and skipped.
        Returns the remaining (not consumed) entries of the checkpoint.
        """
        if not path:
            logger.info("No checkpoint given; the model keeps its initialisation.")
            return {}
        logger.info(f"Loading checkpoint from {path}")
        data = self._read_good(path) if strict else read_checkpoint(path)
        return self._apply(data, path, checkpointables, strict)

    def _apply(self, data: dict, path: str, checkpointables, strict: bool) -> dict:
        data["model"] = strip_prefix(data["model"])
        if strict:
            data = load_weights(self.model, data, path)
        else:
            self._load_model(data.pop("model"))
            apply_calibration(self.model, data)
        keys = list(self.checkpointables) if checkpointables is None else checkpointables
        for key in keys:
            if key in data:
                logger.info(f"Loading {key} state from {path}")
                self.checkpointables[key].load_state_dict(data.pop(key))
        return data

    def _load_model(self, state: dict) -> None:
        own = self.model.state_dict()
        shape_bad = [k for k in state if k in own and state[k].shape != own[k].shape]
        for k in shape_bad:
            logger.warning(
                f"Skip {k}: checkpoint shape {tuple(state[k].shape)} != model {tuple(own[k].shape)}"
            )
            state.pop(k)
        incompatible = self.model.load_state_dict(state, strict=False)
        if incompatible.missing_keys:
            logger.warning(f"Keys missing from the checkpoint: {', '.join(incompatible.missing_keys[:20])}")
        if incompatible.unexpected_keys:
            logger.warning(
                f"Checkpoint keys not in the model: {', '.join(incompatible.unexpected_keys[:20])}"
            )

    def exploded_parameters(self, state: dict) -> list[str]:
        """Names of the model's parameters in ``state`` beyond ``max_abs_weight`` (see
        :func:`softlabelseg.checkpoint_io.exploded_parameters`)."""
        return exploded_parameters(self.model, state, self.max_abs_weight)

    def _read_good(self, path: str) -> dict:
        return read_weights(path, self.model, self.max_abs_weight)

    def set_aside(self, iteration: int) -> str | None:
        """A run diverged in the step after ``iteration`` steps: the checkpoint holding exactly that state
        produced the diverging step, so it is renamed ``<name>.diverged`` (never a resume candidate) and
        ``last_checkpoint`` moves to the newest remaining one. Returns the new last checkpoint (main rank)."""
        last = self.get_checkpoint_file()
        if not last or not comm.is_main_process() or self._iteration_of(os.path.basename(last)) != iteration:
            return last
        os.replace(last, last + ".diverged")
        rest = self.list_checkpoints()
        pointer = os.path.join(self.save_dir, "last_checkpoint")
        if rest:
            atomic_write(pointer, lambda f: f.write(os.path.basename(rest[0]).encode()))
        else:
            os.remove(pointer)
        logger.warning(f"Set {last} aside as {os.path.basename(last)}.diverged: the run diverged in the step "
                       "right after it")
        return rest[0] if rest else None

    def find_resumable(self) -> Resumable:
        """The checkpoint ``--resume`` continues from, read and checked but not yet logged: the file named by
        ``last_checkpoint`` if it is readable and finite, else the next candidate of
        :meth:`list_checkpoints` (each one passed over noted). ``path`` is None when the folder holds no
        checkpoint; :class:`CheckpointError` when ``last_checkpoint`` exists but no candidate is usable."""
        pointer, rejected = self._pointer(), []
        if pointer and not os.path.isfile(os.path.join(self.save_dir, pointer)):
            rejected.append(f"{os.path.join(self.save_dir, pointer)} (named by last_checkpoint) is missing")
        for cand in self.list_checkpoints():
            try:
                data = self._read_good(cand)
            except (CheckpointError, FileNotFoundError) as e:
                rejected.append(str(e))
                continue
            notes = [(logging.WARNING, f"Not resuming from it: {reason}") for reason in rejected]
            notes.append((logging.WARNING, f"Resuming from {cand} instead, the newest good checkpoint")
                         if rejected else (logging.INFO, f"Resuming from {cand}"))
            return Resumable(cand, data, notes)
        if pointer or rejected:
            raise CheckpointError(
                f"--resume: no usable checkpoint in {self.save_dir}:\n  " + "\n  ".join(rejected)
                + "\n  Start over with --overwrite, or choose another train.output_dir."
            )
        return Resumable(None, None, [(logging.INFO, f"--resume: no checkpoint in {self.save_dir}; starting "
                                                     "from iteration 0")])

    def newest_good(self) -> tuple[str | None, dict | None]:
        """:meth:`find_resumable`'s file and content, its notes logged."""
        found = self.find_resumable()
        found.log()
        return found.path, found.data

    def resume_or_load(self, path: str | None, *, resume: bool = True,
                       found: Resumable | None = None) -> dict:
        """With ``resume`` and a checkpoint in ``save_dir``: load the newest good one (:meth:`newest_good`)
        fully and strictly (weights + state; ``resumed_from`` names it); otherwise load only the weights from
        ``path`` (e.g. ``train.init_checkpoint``, non-strict so a new head can be fine-tuned). ``found``: what
        :meth:`find_resumable` read already (the start checks did), so the file is not read again."""
        self.resumed_from = None
        if resume:
            if found is None:
                found = self.find_resumable()
            found.log()
            cand, data = found.path, found.data
            if cand is not None:
                self.resumed_from = cand
                return self._apply(data, cand, None, strict=True)
        return self.load(path, checkpointables=[])
