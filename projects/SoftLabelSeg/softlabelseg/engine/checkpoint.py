"""Atomic checkpoints and resume state (model, optimizer, scheduler, scaler, RNG, data position).

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

import numpy as np
import torch
from torch import nn

from ..utils import comm
from ..utils.fileio import atomic_write

__all__ = ["Checkpointer", "capture_rng_state", "restore_rng_state", "atomic_save", "unwrap_model"]

logger = logging.getLogger(__name__)


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

    def save(self, name: str, **extra) -> str | None:
        """Writes ``<save_dir>/<name>.pth`` atomically and points ``last_checkpoint`` at it."""
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(extra)
        if not self.save_dir or not comm.is_main_process():
            return None
        path = os.path.join(self.save_dir, f"{name}.pth")
        logger.info(f"Saving checkpoint to {path}")
        atomic_save(data, path)
        atomic_write(
            os.path.join(self.save_dir, "last_checkpoint"), lambda f: f.write(os.path.basename(path).encode())
        )
        return path

    def get_checkpoint_file(self) -> str | None:
        """Path named by ``last_checkpoint`` (None when there is none)."""
        if not self.save_dir:
            return None
        pointer = os.path.join(self.save_dir, "last_checkpoint")
        if not os.path.isfile(pointer):
            return None
        with open(pointer) as f:
            name = f.read().strip()
        path = os.path.join(self.save_dir, name)
        return path if os.path.isfile(path) else None

    def has_checkpoint(self) -> bool:
        return self.get_checkpoint_file() is not None

    def load(self, path: str, checkpointables: list[str] | None = None) -> dict:
        """Loads weights (non-strict, logging mismatches) and the named checkpointables (default: all).

        Returns the remaining (not consumed) entries of the checkpoint. ``.safetensors`` files hold weights.
        """
        if not path:
            logger.info("No checkpoint given; the model keeps its initialisation.")
            return {}
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        logger.info(f"Loading checkpoint from {path}")
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            data = {"model": load_file(path)}
        else:
            try:
                data = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise RuntimeError(
                    f"{path} cannot be loaded with torch.load(weights_only=True) ({e}). Only files of "
                    "plain tensors/containers are accepted; re-save it as {'model': state_dict} or as "
                    ".safetensors."
                ) from e
        if (
            isinstance(data, dict)
            and "model" not in data
            and all(isinstance(v, torch.Tensor) for v in data.values())
        ):
            data = {"model": data}
        self._load_model(data.pop("model"))
        keys = list(self.checkpointables) if checkpointables is None else checkpointables
        for key in keys:
            if key in data:
                logger.info(f"Loading {key} state from {path}")
                self.checkpointables[key].load_state_dict(data.pop(key))
        return data

    def _load_model(self, state: dict) -> None:
        if state and all(k.startswith("module.") for k in state):
            state = {k[len("module.") :]: v for k, v in state.items()}
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

    def resume_or_load(self, path: str | None, *, resume: bool = True) -> dict:
        """With ``resume`` and a checkpoint in ``save_dir``: load it fully (weights + state); otherwise load
        only the weights from ``path`` (e.g. ``train.init_checkpoint``)."""
        if resume and self.has_checkpoint():
            return self.load(self.get_checkpoint_file())
        return self.load(path, checkpointables=[])
