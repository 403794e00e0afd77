"""The training loop with hooks: TrainerBase, SimpleTrainer, AMPTrainer (detectron2's shapes, trimmed).

One iteration = one optimizer step over ``grad_accum_steps`` loader batches. The resumable state
(``state_dict``) holds the iteration, optimizer, hook states (LR scheduler), grad scaler, the RNG state of
every rank and the data position (batches consumed, plus the loader's own ``state_dict`` when it has one).
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from contextlib import nullcontext

import torch
from torch import nn

from . import comm
from .checkpoint import capture_rng_state, restore_rng_state
from .events import EventStorage

__all__ = ["HookBase", "TrainerBase", "SimpleTrainer", "AMPTrainer"]

logger = logging.getLogger(__name__)


class HookBase:
    """Callbacks around training; ``self.trainer`` is set (weakly) when registered."""

    trainer: TrainerBase

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_step(self):
        pass

    def after_step(self):
        pass

    def state_dict(self):
        return {}


class TrainerBase:
    """Runs ``run_step`` from ``start_iter`` to ``max_iter`` with hooks.

    After a complete run ``self.iter == max_iter``; after an exception it is the failing iteration, which
    hooks use in ``after_train`` to tell a finished run from a failed one.
    """

    def __init__(self):
        self._hooks: list[HookBase] = []
        self.iter = 0
        self.start_iter = 0
        self.max_iter = 0
        self.storage: EventStorage | None = None

    def register_hooks(self, hooks):
        for h in hooks:
            if h is None:
                continue
            h.trainer = weakref.proxy(self)
            self._hooks.append(h)

    def train(self, start_iter: int, max_iter: int):
        logger.info(f"Starting training from iteration {start_iter}")
        self.iter = self.start_iter = start_iter
        self.max_iter = max_iter
        with EventStorage(start_iter) as self.storage:
            try:
                self.before_train()
                for self.iter in range(start_iter, max_iter):
                    self.before_step()
                    self.run_step()
                    self.after_step()
                self.iter += 1
            except Exception:
                logger.error(f"Training stopped by an exception at iteration {self.iter}")
                raise
            finally:
                self.after_train()

    def before_train(self):
        for h in self._hooks:
            h.before_train()

    def after_train(self):
        self.storage.iter = self.iter
        for h in self._hooks:
            h.after_train()

    def before_step(self):
        self.storage.iter = self.iter
        for h in self._hooks:
            h.before_step()

    def after_step(self):
        for h in self._hooks:
            h.after_step()

    def run_step(self):
        raise NotImplementedError

    def state_dict(self) -> dict:
        ret = {"iteration": self.iter}
        hooks = {type(h).__qualname__: h.state_dict() for h in self._hooks if h.state_dict()}
        if hooks:
            ret["hooks"] = hooks
        return ret

    def load_state_dict(self, state: dict):
        self.iter = int(state["iteration"])
        for key, value in state.get("hooks", {}).items():
            for h in self._hooks:
                if type(h).__qualname__ == key and hasattr(h, "load_state_dict"):
                    h.load_state_dict(value)
                    break
            else:
                logger.warning(f"Cannot find the hook {key!r}; its state in the checkpoint is not loaded")


class SimpleTrainer(TrainerBase):
    """``loss_dict = model(batch)``; backward; optional grad clipping; optimizer step.

    Args:
        model: training-mode model returning a dict of scalar losses.
        data_loader: iterable of batches (an infinite iterator of ``list[dict]``).
        optimizer: a torch optimizer.
        grad_accum_steps: loader batches per optimizer step (losses are averaged over them).
        clip_grad_norm: max global L2 norm of the gradients (None: no clipping).
    Raises:
        FloatingPointError (all ranks together) when the loss is NaN or infinite; no optimizer step is taken.
    """

    def __init__(self, model, data_loader, optimizer, grad_accum_steps: int = 1, clip_grad_norm=None):
        super().__init__()
        model.train()
        self.model = model
        self.data_loader = data_loader
        self._data_iter = None
        self.optimizer = optimizer
        self.grad_accum_steps = int(grad_accum_steps)
        if self.grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {grad_accum_steps}")
        self.clip_grad_norm = clip_grad_norm
        self.batches_consumed = 0
        self._pending_data_state = None

    @property
    def data_iter(self):
        if self._data_iter is None:
            self._data_iter = iter(self.data_loader)
            if self._pending_data_state is not None:
                self._restore_data_position(self._pending_data_state)
                self._pending_data_state = None
        return self._data_iter

    def _next_batch(self):
        batch = next(self.data_iter)
        self.batches_consumed += 1
        return batch

    def _autocast(self):
        return nullcontext()

    def _backward(self, loss: torch.Tensor):
        loss.backward()

    def _optimizer_step(self):
        if self.clip_grad_norm:
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
            self.storage.put_scalar("grad_norm", norm)
        self.optimizer.step()

    def run_step(self):
        start = time.perf_counter()
        batches = [self._next_batch() for _ in range(self.grad_accum_steps)]
        data_time = time.perf_counter() - start
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = (
                nullcontext()
                if last or not isinstance(self.model, nn.parallel.DistributedDataParallel)
                else (self.model.no_sync())
            )
            with sync:
                with self._autocast():
                    loss_dict = self.model(batch)
                if isinstance(loss_dict, torch.Tensor):
                    loss_dict = {"total_loss": loss_dict}
                losses = sum(loss_dict.values())
                self._backward(losses / self.grad_accum_steps)
            for k, v in loss_dict.items():
                sums[k] = sums.get(k, 0) + v.detach().float() / self.grad_accum_steps
        metrics = comm.reduce_mean(sums)
        total = sum(metrics.values())
        if not math.isfinite(total):
            detail = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            raise FloatingPointError(
                f"Loss became infinite or NaN at iteration {self.iter} ({detail}); no update was applied and "
                "earlier checkpoints are untouched. Lower the learning rate, set train.clip_grad_norm, "
                "or try fp32 (train.amp.enabled=False), then --resume from the last good checkpoint."
            )
        self._optimizer_step()
        if len(metrics) > 1:
            self.storage.put_scalar("total_loss", total)
        self.storage.put_scalars(**metrics)
        self.storage.put_scalar("data_time", data_time)

    # -- resumable state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        ret = super().state_dict()
        ret["optimizer"] = self.optimizer.state_dict()
        ret["rng"] = _all_gather_object(capture_rng_state())
        data = {"batches_consumed": self.batches_consumed}
        loader_state = getattr(self.data_loader, "state_dict", None)
        if callable(loader_state):
            data["loader"] = _all_gather_object(loader_state())
        ret["data"] = data
        return ret

    def load_state_dict(self, state: dict):
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        rank, world = comm.get_rank(), comm.get_world_size()
        if "data" in state:
            self._pending_data_state = state["data"]
            if self._data_iter is not None:  # iterator already live: restore now
                self._restore_data_position(self._pending_data_state)
                self._pending_data_state = None
        rng = state.get("rng")
        if rng:
            if len(rng) != world:
                logger.warning(f"Checkpoint has RNG states of {len(rng)} ranks, this run has {world}")
            self._rng_to_restore = rng[rank % len(rng)]
            if self._pending_data_state is None:
                restore_rng_state(self._rng_to_restore)
                self._rng_to_restore = None

    def _restore_data_position(self, data: dict):
        rank = comm.get_rank()
        self.batches_consumed = int(data.get("batches_consumed", 0))
        if "loader" in data and callable(getattr(self.data_loader, "load_state_dict", None)):
            states = data["loader"]
            self.data_loader.load_state_dict(states[rank % len(states)])
            self._data_iter = iter(self.data_loader)
        else:
            n = self.batches_consumed
            if n:
                logger.info(f"Fast-forwarding the data loader by {n} batches to the checkpoint's position")
            for _ in range(n):
                next(self._data_iter)
        # RNG last: fast-forwarding may have drawn random numbers in this process
        if getattr(self, "_rng_to_restore", None) is not None:
            restore_rng_state(self._rng_to_restore)
            self._rng_to_restore = None


class AMPTrainer(SimpleTrainer):
    """SimpleTrainer under ``torch.autocast`` on CUDA: ``precision`` "bf16" or "fp16" (fp16 uses a GradScaler,
    saved in the checkpoint)."""

    def __init__(self, model, data_loader, optimizer, precision: str = "bf16", **kwargs):
        super().__init__(model, data_loader, optimizer, **kwargs)
        if precision not in ("bf16", "fp16"):
            raise ValueError(f"train.amp.precision must be 'bf16' or 'fp16', got {precision!r}")
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        self.grad_scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.dtype)

    def _backward(self, loss):
        if self.grad_scaler is None:
            loss.backward()
        else:
            self.grad_scaler.scale(loss).backward()

    def _optimizer_step(self):
        if self.grad_scaler is None:
            return super()._optimizer_step()
        if self.clip_grad_norm:
            self.grad_scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
            self.storage.put_scalar("grad_norm", norm)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def state_dict(self):
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if self.grad_scaler is not None and "grad_scaler" in state:
            self.grad_scaler.load_state_dict(state["grad_scaler"])


def _all_gather_object(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    world = comm.get_world_size()
    if world == 1:
        return [obj]
    out = [None] * world
    torch.distributed.all_gather_object(out, obj)
    return out
