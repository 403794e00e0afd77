"""Training metrics: an EventStorage of scalar histories and the writers that drain it
(console with ETA, JSON lines ``metrics.json``, TensorBoard). A trimmed detectron2.utils.events."""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections import defaultdict
from functools import partial

import torch
from fvcore.common.history_buffer import HistoryBuffer

from ..utils.fileio import atomic_write

__all__ = [
    "trim_metrics",
    "EventStorage",
    "get_event_storage",
    "EventWriter",
    "JSONWriter",
    "TensorboardXWriter",
    "CommonMetricPrinter",
]

_STACK: list[EventStorage] = []


def get_event_storage() -> EventStorage:
    """The innermost active EventStorage (inside ``with EventStorage():``)."""
    if not _STACK:
        raise RuntimeError("get_event_storage() must be called inside a 'with EventStorage(...)' block")
    return _STACK[-1]


class EventStorage:
    """Scalar histories keyed by name; ``iter`` is the current training iteration."""

    def __init__(self, start_iter: int = 0):
        self.iter = start_iter
        self._history: dict[str, HistoryBuffer] = defaultdict(partial(HistoryBuffer, max_length=1000))
        self._latest: dict[str, tuple[float, int]] = {}
        self._smoothing: dict[str, bool] = {}

    def put_scalar(self, name: str, value, smoothing_hint: bool = True):
        value = float(value.item() if isinstance(value, torch.Tensor) else value)
        self._history[name].update(value, self.iter)
        self._latest[name] = (value, self.iter)
        self._smoothing.setdefault(name, smoothing_hint)

    def put_scalars(self, *, smoothing_hint: bool = True, **kwargs):
        for k, v in kwargs.items():
            self.put_scalar(k, v, smoothing_hint)

    def history(self, name: str) -> HistoryBuffer:
        if name not in self._history:
            raise KeyError(f"no history for metric {name!r}")
        return self._history[name]

    def latest(self) -> dict[str, tuple[float, int]]:
        return dict(self._latest)

    def latest_with_smoothing_hint(self, window: int = 20) -> dict[str, tuple[float, int]]:
        """name -> (median over the last ``window`` values if smoothed, else latest, iteration)."""
        return {
            k: (self._history[k].median(window) if self._smoothing[k] else v, it)
            for k, (v, it) in self._latest.items()
        }

    def __enter__(self):
        _STACK.append(self)
        return self

    def __exit__(self, *exc):
        assert _STACK[-1] is self
        _STACK.pop()


class EventWriter:
    def write(self):
        raise NotImplementedError

    def close(self):
        pass


class JSONWriter(EventWriter):
    """Appends one JSON object per write to ``path`` (``metrics.json``): {"iteration": i, name: value}."""

    def __init__(self, path: str, window_size: int = 20):
        self._path = path
        self._window = window_size
        self._last_written = -1
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(self):
        storage = get_event_storage()
        by_iter: dict[int, dict] = defaultdict(dict)
        for k, (v, it) in storage.latest_with_smoothing_hint(self._window).items():
            if it > self._last_written:
                by_iter[it][k] = v
        if not by_iter:
            return
        with open(self._path, "a") as f:
            for it in sorted(by_iter):
                f.write(json.dumps({"iteration": it, **by_iter[it]}, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._last_written = max(by_iter)


def trim_metrics(path: str, start_iter: int) -> int:
    """Drops the lines of ``metrics.json`` at iterations ``>= start_iter`` (written after the checkpoint a
    run resumes from, so written again by the resumed run); returns how many. Rewritten atomically."""
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        lines = f.readlines()

    def keep(line: str) -> bool:
        try:
            return int(json.loads(line)["iteration"]) < start_iter
        except (ValueError, KeyError, TypeError):
            return not line.strip() == ""  # a foreign line stays; an empty one goes
    kept = [ln if ln.endswith("\n") else ln + "\n" for ln in lines if keep(ln)]
    dropped = len(lines) - len(kept)
    if dropped:
        atomic_write(path, lambda f: f.write("".join(kept).encode()))
    return dropped


class TensorboardXWriter(EventWriter):
    """Writes the smoothed scalars to TensorBoard event files in ``log_dir``."""

    def __init__(self, log_dir: str, window_size: int = 20):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir)
        self._window = window_size
        self._last_write = -1

    def write(self):
        storage = get_event_storage()
        new_last = self._last_write
        for k, (v, it) in storage.latest_with_smoothing_hint(self._window).items():
            if it > self._last_write:
                self._writer.add_scalar(k, v, it)
                new_last = max(new_last, it)
        self._last_write = new_last

    def close(self):
        self._writer.close()


class CommonMetricPrinter(EventWriter):
    """Logs iteration, ETA, losses, timing, lr and peak memory (GPU: max allocated; CPU: peak RSS)."""

    def __init__(self, max_iter: int, window_size: int = 20):
        self.logger = logging.getLogger("softlabelseg.engine")
        self._max_iter = max_iter
        self._window = window_size

    def _eta(self, storage) -> str:
        try:  # mean of recent iterations: robust to a slow start and to load changes on shared machines
            t = storage.history("time").avg(200)
        except KeyError:
            return ""
        left = self._max_iter - storage.iter - 1
        return "eta: " + str(datetime.timedelta(seconds=int(t * left))) + "  "

    def write(self):
        storage = get_event_storage()
        it = storage.iter
        if it == self._max_iter:  # after training: nothing new to print
            return
        latest = storage.latest()
        losses = "  ".join(
            f"{k}: {storage.history(k).median(self._window):.4g}" for k in latest if "loss" in k
        )
        timing = ""
        if "time" in latest:
            timing += f"time: {storage.history('time').avg(self._window):.4f}  "
        if "data_time" in latest:
            timing += f"data_time: {storage.history('data_time').avg(self._window):.4f}  "
        lr = f"lr: {latest['lr'][0]:.5g}  " if "lr" in latest else ""
        mem = ""
        if "max_mem_mb" in latest:
            mem = f"max_mem: {latest['max_mem_mb'][0]:.0f}M"
        elif "max_rss_mb" in latest:
            mem = f"max_rss: {latest['max_rss_mb'][0]:.0f}M"
        self.logger.info(f" {self._eta(storage)}iter: {it}  {losses}  {timing}{lr}{mem}".rstrip())
