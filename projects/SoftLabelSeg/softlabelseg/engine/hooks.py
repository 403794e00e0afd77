"""Training hooks: timing, LR scheduling, periodic checkpoints, periodic evaluation, metric writers."""

from __future__ import annotations

import logging
import os
import resource
import sys
import time

import torch

from ..utils import comm
from .checkpoint import PERIODIC_NAME
from .train_loop import HookBase

__all__ = [
    "IterationTimer",
    "LRScheduler",
    "PeriodicCheckpointer",
    "EvalHook",
    "PeriodicWriter",
    "MemoryStats",
    "SkippedSamples",
]

logger = logging.getLogger(__name__)


class IterationTimer(HookBase):
    """Puts ``time`` (seconds per iteration, data loading included) and logs the total at the end."""

    def __init__(self):
        self._start = None
        self._step_start = None

    def before_train(self):
        self._start = time.perf_counter()

    def before_step(self):
        self._step_start = time.perf_counter()

    def after_step(self):
        self.trainer.storage.put_scalar("time", time.perf_counter() - self._step_start)

    def after_train(self):
        done = self.trainer.iter - self.trainer.start_iter
        total = time.perf_counter() - self._start
        logger.info(f"Total training time: {total:.1f} s for {done} iterations")


class LRScheduler(HookBase):
    """Steps a torch LR scheduler after every iteration and records the lr of the largest param group."""

    def __init__(self, optimizer, scheduler):
        self.optimizer = optimizer
        self.scheduler = scheduler
        self._best = max(
            range(len(optimizer.param_groups)), key=lambda i: len(optimizer.param_groups[i]["params"])
        )

    def after_step(self):
        self.trainer.storage.put_scalar(
            "lr", self.optimizer.param_groups[self._best]["lr"], smoothing_hint=False
        )
        self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


class MemoryStats(HookBase):
    """Puts the peak memory: ``max_mem_mb`` (CUDA max allocated) or ``max_rss_mb`` (process peak RSS)."""

    def after_step(self):
        if torch.cuda.is_available():
            mb = torch.cuda.max_memory_allocated() / 2**20
            self.trainer.storage.put_scalar("max_mem_mb", mb, smoothing_hint=False)
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
            self.trainer.storage.put_scalar("max_rss_mb", mb, smoothing_hint=False)


class SkippedSamples(HookBase):
    """Puts ``data/skipped_samples`` (skip events so far, all ranks summed) when the training loader counts
    skipped samples (``skip_bad_samples=True``), and logs the total and the distinct files at the end."""

    def __init__(self, period: int = 20):
        self.period = max(1, int(period))

    def _count(self) -> int | None:
        n = getattr(self.trainer.data_loader, "num_skipped", None)
        return None if n is None else int(comm.all_reduce_sum(torch.tensor(int(n))))

    def after_step(self):
        if (self.trainer.iter + 1) % self.period == 0 or self.trainer.iter + 1 == self.trainer.max_iter:
            n = self._count()
            if n is not None:
                self.trainer.storage.put_scalar("data/skipped_samples", n, smoothing_hint=False)

    def after_train(self):
        n = self._count()
        files = getattr(self.trainer.data_loader, "skipped", None) or {}
        if n:
            logger.warning(
                f"{n} training sample(s) were skipped ({len(files)} distinct file(s) on rank "
                f"{comm.get_rank()}): "
                + ", ".join(sorted(files)[:20]) + (" ..." if len(files) > 20 else "")
            )


class PeriodicCheckpointer(HookBase):
    """Saves ``model_<iter:07d>.pth`` every ``period`` iterations and ``model_final.pth`` at the end,
    keeping the newest ``max_to_keep`` periodic files (None keeps all)."""

    def __init__(
        self, checkpointer, period: int, max_iter: int | None = None, max_to_keep: int | None = None
    ):
        self.checkpointer = checkpointer
        self.period = int(period)
        self.max_iter = max_iter
        self.max_to_keep = max_to_keep
        self._recent: list[str] = []

    def before_train(self):
        self.max_iter = self.max_iter or self.trainer.max_iter
        # periodic files of earlier (resumed) sessions count towards max_to_keep too
        folder = self.checkpointer.save_dir
        if folder and os.path.isdir(folder):
            names = sorted(f for f in os.listdir(folder) if PERIODIC_NAME.fullmatch(f))
            self._recent = [os.path.join(folder, f) for f in names]

    def after_step(self):
        it = self.trainer.iter + 1  # iterations done
        if it >= self.max_iter:
            self.checkpointer.save("model_final", iteration=it)
        elif self.period > 0 and it % self.period == 0:
            path = self.checkpointer.save(f"model_{it - 1:07d}", iteration=it)
            if path and self.max_to_keep:
                if path in self._recent:
                    self._recent.remove(path)
                self._recent.append(path)
                while len(self._recent) > self.max_to_keep:
                    old = self._recent.pop(0)
                    if os.path.exists(old):
                        os.remove(old)


class EvalHook(HookBase):
    """Runs ``eval_function() -> dict`` every ``period`` iterations and after the last one; nested
    metric dicts are flattened (``sem_seg/mIoU``) into the event storage."""

    def __init__(self, period: int, eval_function):
        self.period = int(period)
        self.func = eval_function

    def _do_eval(self):
        results = self.func() or {}
        flat = _flatten(results)
        storage = self.trainer.storage
        for k, v in flat.items():
            try:
                storage.put_scalar(k, float(v), smoothing_hint=False)
            except (TypeError, ValueError):
                logger.warning(f"Evaluation result {k}={v!r} is not a number; not logged")
        comm.synchronize()

    def after_step(self):
        it = self.trainer.iter + 1
        if self.period > 0 and it % self.period == 0 and it != self.trainer.max_iter:
            self._do_eval()

    def after_train(self):
        if self.trainer.iter >= self.trainer.max_iter:  # finished normally
            self._do_eval()


class PeriodicWriter(HookBase):
    """Calls ``writer.write()`` every ``period`` iterations and at the end (main rank only)."""

    def __init__(self, writers, period: int = 20):
        self.writers = list(writers)
        self.period = int(period)

    def after_step(self):
        it = self.trainer.iter + 1
        if it % self.period == 0 or it == self.trainer.max_iter:
            for w in self.writers:
                w.write()

    def after_train(self):
        for w in self.writers:
            w.write()
            w.close()


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out
