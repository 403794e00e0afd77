"""The training loop: hooks around a run of optimizer steps, and the state that lets a run continue.

Three parts, each usable alone:

- :class:`TrainStep` is one iteration: ``grad_accum_steps`` loader batches through the model (losses
  averaged, DDP gradients synchronised on the last one only), optional clipping of the global gradient
  norm, the optimizer step, optional CUDA autocast (bf16, or fp16 with a GradScaler). It writes
  ``loss_*``/``total_loss``, ``data_time`` and ``grad_norm`` to whatever event storage it is given, so
  detectron2's trainer runs it unchanged (``softlabelseg.d2_bridge``).
- :class:`TrainerBase` runs ``run_step`` from ``start_iter`` to ``max_iter`` and calls the hooks.
- :class:`SimpleTrainer`: the loop with a ``TrainStep`` (whose ``precision`` decides CUDA autocast).

What a hook sees. ``before_train``/``after_train`` bracket the run, ``before_step``/``after_step`` every
iteration; ``self.trainer`` is a weak proxy to the trainer. Inside an iteration ``trainer.iter`` is its
index and ``trainer.storage.iter`` equals it. After the run ``trainer.iter`` is ``max_iter`` when every
iteration ran and the index of the failing one otherwise: that is how ``after_train`` tells the two apart.

The state of a run (``state_dict``): ``iteration`` (index of the iteration that had just finished),
``hooks`` (hook class name -> its state, e.g. the LR scheduler), ``optimizer``, ``grad_scaler`` (fp16),
``rng`` (python/numpy/torch/CUDA generators of every rank) and ``data`` (``batches_consumed`` and, when
the loader has one, its own ``state_dict`` of every rank). Restoring it continues the run exactly.

Kept from detectron2 on purpose: the hook method names, the meaning of ``trainer.iter`` and the
``iteration``/``hooks`` entries of the state, so that detectron2's hooks drive a ``TrainStep`` and either
engine resumes the other's checkpoints.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import weakref
from collections import deque
from contextlib import nullcontext

import torch
from torch import nn

from ..utils import comm
from .checkpoint import capture_rng_state, restore_rng_state
from .events import EventStorage

__all__ = ["HookBase", "TrainStep", "TrainerBase", "SimpleTrainer"]

logger = logging.getLogger(__name__)


class HookBase:
    """A callback of the training loop (see the module docstring for what it sees)."""

    trainer: TrainerBase

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_step(self):
        pass

    def after_step(self):
        pass

    def state_dict(self) -> dict:
        """What to save in checkpoints (empty: nothing); restored through ``load_state_dict``."""
        return {}


class TrainerBase:
    """Runs ``run_step`` for iterations ``start_iter .. max_iter - 1`` inside an ``EventStorage``,
    calling the registered hooks around the run and around every iteration."""

    def __init__(self):
        self._hooks: list[HookBase] = []
        self.iter = self.start_iter = self.max_iter = 0
        self.storage: EventStorage | None = None

    def register_hooks(self, hooks) -> None:
        """Appends ``hooks`` (None entries are skipped); they run in registration order."""
        for hook in hooks:
            if hook is not None:
                hook.trainer = weakref.proxy(self)
                self._hooks.append(hook)

    def _each_hook(self, method: str) -> None:
        for hook in self._hooks:
            getattr(hook, method)()

    def train(self, start_iter: int, max_iter: int) -> None:
        logger.info(f"Starting training from iteration {start_iter}")
        self.start_iter, self.max_iter, self.iter = start_iter, max_iter, start_iter
        with EventStorage(start_iter) as self.storage:
            try:
                self._each_hook("before_train")
                while self.iter < max_iter:
                    self.storage.iter = self.iter
                    self._each_hook("before_step")
                    self.run_step()
                    self._each_hook("after_step")
                    self.iter += 1
            except Exception:
                logger.error(f"Training stopped by an exception at iteration {self.iter}")
                raise
            finally:
                self.storage.iter = self.iter
                self._each_hook("after_train")

    def run_step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        state = {"iteration": self.iter}
        hooks = {type(h).__qualname__: s for h in self._hooks if (s := h.state_dict())}
        if hooks:
            state["hooks"] = hooks
        return state

    def load_state_dict(self, state: dict) -> None:
        self.iter = int(state["iteration"])
        by_name = {type(h).__qualname__: h for h in self._hooks}
        for name, hook_state in state.get("hooks", {}).items():
            hook = by_name.get(name)
            if hook is None or not hasattr(hook, "load_state_dict"):
                logger.warning(f"Checkpoint state of hook {name!r} ignored: this run has no such hook")
            else:
                hook.load_state_dict(hook_state)


def _own(per_rank: list):
    """This rank's entry of a per-rank list saved by a run with possibly another world size."""
    if len(per_rank) != comm.get_world_size():
        logger.warning(f"The checkpoint was written by {len(per_rank)} ranks; this run has "
                       f"{comm.get_world_size()}")
    return per_rank[comm.get_rank() % len(per_rank)]


class _LoaderPosition:
    """The loader's batches, counted, so that a resumed run continues at the same position: through the
    loader's own ``state_dict``/``load_state_dict`` when it has them, otherwise by drawing and
    discarding the batches already consumed from a fresh iterator (the stream is deterministic)."""

    def __init__(self, loader):
        self.loader = loader
        self.consumed = 0
        self._iterator = None
        self._resume_at: dict | None = None

    def start(self) -> None:
        """Creates the iterator (at the resumed position, if any); drawing a batch does it too."""
        if self._iterator is not None:
            return
        at, self._resume_at = self._resume_at, None
        loadable = callable(getattr(self.loader, "load_state_dict", None))
        restores = at is not None and "loader" in at and loadable
        if restores:
            self.loader.load_state_dict(_own(at["loader"]))
        self._iterator = iter(self.loader)
        if at is not None:
            self.consumed = int(at.get("batches_consumed", 0))
            if not restores and self.consumed:
                logger.info(f"Skipping the {self.consumed} batches the checkpoint had consumed")
                for _ in range(self.consumed):
                    next(self._iterator)

    def next(self):
        self.start()
        batch = next(self._iterator)
        self.consumed += 1
        return batch

    def state_dict(self) -> dict:
        state = {"batches_consumed": self.consumed}
        if callable(getattr(self.loader, "state_dict", None)):
            state["loader"] = comm.all_gather_object(self.loader.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        self._resume_at, self._iterator = dict(state), None


class TrainStep:
    """One optimizer step over ``grad_accum_steps`` batches of ``data_loader``.

    Args:
        model: training-mode model, ``model(batch) -> dict`` of scalar losses (or one loss tensor).
        data_loader: iterable of batches (the project's are infinite streams of ``list[dict]``).
        optimizer: a torch optimizer.
        grad_accum_steps: batches per optimizer step; the losses are averaged over them.
        clip_grad_norm: largest global L2 norm of the gradients (None: no clipping).
        precision: None for fp32, or "bf16" / "fp16" for CUDA autocast (fp16 adds a GradScaler).
        max_loss: a loss above this counts as diverged (None: only inf/NaN).
        max_loss_ratio: so does a loss above this multiple of the median of the last 50 (from the 5th on)
            that is also above the run's starting loss (the median of its first 5): a late-training spike
            that stays below where training began is not an explosion.
        chance_loss: the loss of a uniform guess (ln of the class count), or None.
        max_start_loss_ratio: a starting loss above this multiple of ``chance_loss`` counts as diverged:
            a run that is broken from its first steps (e.g. a learning rate far too high) has no calm
            median for ``max_loss_ratio`` to compare with.
    Raises (from ``run``):
        FloatingPointError, on every rank alike, when the loss is NaN, infinite or above ``max_loss``; no
        update is applied.

    The optimizer's hyperparameters as configured (learning rate, weight decay, momentum, ...) win over a
    checkpoint's on ``load_state_dict``; each one that changes is logged.
    """

    def __init__(self, model, data_loader, optimizer, grad_accum_steps: int = 1, clip_grad_norm=None,
                 precision: str | None = None, max_loss: float | None = None,
                 max_loss_ratio: float | None = None, chance_loss: float | None = None,
                 max_start_loss_ratio: float | None = None):
        if int(grad_accum_steps) < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {grad_accum_steps}")
        if precision not in (None, "bf16", "fp16"):
            raise ValueError(f"train.amp.precision must be 'bf16' or 'fp16', got {precision!r}")
        model.train()
        self.model, self.optimizer = model, optimizer
        self.batches = _LoaderPosition(data_loader)
        self.grad_accum_steps = int(grad_accum_steps)
        self.clip_grad_norm = clip_grad_norm
        self.dtype = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.grad_scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.max_loss, self.max_loss_ratio = max_loss, max_loss_ratio
        self.chance_loss, self.max_start_loss_ratio = chance_loss, max_start_loss_ratio
        self._recent_losses: deque[float] = deque(maxlen=50)
        self._start_loss: float | None = None  # median of the first 5 losses (checkpointed)
        self._rng_after_positioning = None
        self._configured = [{k: v for k, v in g.items() if k not in ("params", "initial_lr")}
                            for g in optimizer.param_groups]

    @property
    def data_loader(self):
        return self.batches.loader

    def _draw(self) -> list:
        if self._rng_after_positioning is not None:
            # Positioning the stream may draw random numbers (a fresh DataLoader iterator does), so the
            # saved generators are restored after it, right before the first resumed batch.
            self.batches.start()
            restore_rng_state(self._rng_after_positioning)
            self._rng_after_positioning = None
        return [self.batches.next() for _ in range(self.grad_accum_steps)]

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.dtype) if self.dtype is not None else nullcontext()

    def run(self, storage, iteration: int) -> None:
        """Runs the step and puts its metrics into ``storage`` (an EventStorage, ours or detectron2's)."""
        t0 = time.perf_counter()
        batches = self._draw()
        data_time = time.perf_counter() - t0
        n = len(batches)
        ddp = isinstance(self.model, nn.parallel.DistributedDataParallel)
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        for i, batch in enumerate(batches):
            with self.model.no_sync() if ddp and i < n - 1 else nullcontext():
                with self._autocast():
                    losses = self.model(batch)
                if isinstance(losses, torch.Tensor):
                    losses = {"total_loss": losses}
                total = sum(losses.values()) / n
                (self.grad_scaler.scale(total) if self.grad_scaler is not None else total).backward()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.detach().float() / n
        means = comm.reduce_mean(sums)
        loss = sum(means.values())
        what = self._divergence(float(loss))
        if what:
            values = ", ".join(f"{k}={v:.4g}" for k, v in means.items())
            raise FloatingPointError(
                f"The loss is {what} at iteration {iteration} ({values}): the run has diverged. No update "
                "was applied and the checkpoints written so far are intact. Lower the learning rate (e.g. "
                "optimizer.lr=<a tenth of it>) and/or set train.clip_grad_norm=1.0 (or train in fp32: "
                "train.amp.enabled=False), then continue with --resume and those overrides: the resumed run "
                "takes its learning rate and clipping from the config."
            )
        self._update(storage)
        if len(means) > 1:
            storage.put_scalar("total_loss", loss)
        storage.put_scalars(**means)
        storage.put_scalar("data_time", data_time)

    def _divergence(self, loss: float) -> str | None:
        """Why ``loss`` means the run has diverged, or None (then it joins the recent losses)."""
        if not math.isfinite(loss):
            return "not finite"
        if self.max_loss is not None and loss > self.max_loss:
            return f"above train.divergence.max_loss={self.max_loss:g}"
        recent = self._recent_losses
        if self.max_loss_ratio is not None and len(recent) >= 5 and self._start_loss is not None:
            median = statistics.median(recent)
            if loss > self.max_loss_ratio * median and loss > self._start_loss:
                return (f"{loss / median:.0f} times its median over the last {len(recent)} iterations and "
                        f"above the starting loss {self._start_loss:.3g} "
                        f"(train.divergence.max_loss_ratio={self.max_loss_ratio:g})")
        recent.append(loss)
        if self._start_loss is None and len(recent) == 5:
            self._start_loss = statistics.median(recent)
            limit = (self.max_start_loss_ratio or 0) * (self.chance_loss or 0)
            if limit > 0 and self._start_loss > limit:
                ratio, chance = self._start_loss / self.chance_loss, self.chance_loss
                return (f"{self._start_loss:.3g} over its first 5 iterations (median), {ratio:.1f} times the "
                        f"{chance:.3g} of a uniform guess (train.divergence.max_start_loss_ratio="
                        f"{self.max_start_loss_ratio:g}): the run started diverged")
        return None

    def _update(self, storage) -> None:
        if self.clip_grad_norm:
            if self.grad_scaler is not None:
                self.grad_scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            storage.put_scalar("grad_norm", torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm))
        if self.grad_scaler is None:
            self.optimizer.step()
        else:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()

    def state_dict(self) -> dict:
        """``optimizer``, ``rng`` and ``data`` (of every rank), ``grad_scaler`` with fp16."""
        state = {"optimizer": self.optimizer.state_dict(), "rng": comm.all_gather_object(capture_rng_state()),
                 "data": self.batches.state_dict()}
        if self._start_loss is not None:
            state["start_loss"] = self._start_loss
        if self.grad_scaler is not None:
            state["grad_scaler"] = self.grad_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._keep_configured_hyperparameters()
        self._start_loss = state.get("start_loss", self._start_loss)
        if self.grad_scaler is not None and "grad_scaler" in state:
            self.grad_scaler.load_state_dict(state["grad_scaler"])
        if "data" in state:
            self.batches.load_state_dict(state["data"])
        if state.get("rng"):
            self._rng_after_positioning = _own(state["rng"])


    def _keep_configured_hyperparameters(self) -> None:
        """After loading a checkpoint's optimizer: the configured values win. A new learning rate rescales
        the current one (the schedule's position is kept) and becomes the base (``initial_lr``)."""
        for i, (group, configured) in enumerate(zip(self.optimizer.param_groups, self._configured)):
            for key, value in configured.items():
                if key == "lr":
                    old = group.get("initial_lr", group["lr"])
                    if old != value:
                        group["lr"] = group["lr"] * (value / old) if old else value
                        group["initial_lr"] = value
                        logger.warning(f"optimizer.lr: the checkpoint's schedule ran at base lr {old:g} "
                                       f"(group {i}); the config's {value:g} is used from here on")
                elif key in group and _differs(group[key], value):
                    logger.warning(f"optimizer {key} of group {i}: checkpoint {group[key]!r}, config "
                                   f"{value!r}; the config's value is used")
                    group[key] = value


def _differs(a, b) -> bool:
    try:
        return bool(a != b)
    except (RuntimeError, ValueError):  # tensors
        return not torch.equal(torch.as_tensor(a), torch.as_tensor(b))


class SimpleTrainer(TrainerBase):
    """The loop (:class:`TrainerBase`) with one :class:`TrainStep` per iteration (same arguments);
    ``state_dict`` is the loop's (iteration, hook states) plus the step's."""

    def __init__(self, model, data_loader, optimizer, grad_accum_steps: int = 1, clip_grad_norm=None,
                 precision: str | None = None):
        super().__init__()
        self.step = TrainStep(model, data_loader, optimizer, grad_accum_steps, clip_grad_norm, precision)

    @classmethod
    def from_step(cls, step: TrainStep) -> SimpleTrainer:
        """The loop around an existing step (its precision decides autocast)."""
        trainer = cls.__new__(cls)
        TrainerBase.__init__(trainer)
        trainer.step = step
        return trainer

    model = property(lambda self: self.step.model)
    optimizer = property(lambda self: self.step.optimizer)
    data_loader = property(lambda self: self.step.data_loader)

    def run_step(self) -> None:
        self.step.run(self.storage, self.iter)

    def state_dict(self) -> dict:
        return {**super().state_dict(), **self.step.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        # the optimizer first: the LR scheduler's state then sets each group's lr for the resumed iteration
        self.step.load_state_dict(state)
        super().load_state_dict(state)
