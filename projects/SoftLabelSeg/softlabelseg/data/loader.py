"""Data loaders: an infinite seeded training stream and a sequential evaluation loader.

Both yield ``list[dict]`` batches of mapper outputs (detectron2's trivial collation; the model stacks
targets). The training stream is a pure function of (seed, rank, world size): indices come from seeded
permutations, batch ``b`` holds stream positions ``b*B .. b*B+B-1`` and the sample at position ``k`` is
mapped with its own generator seeded by (seed, rank, k). Worker ``w`` of ``n`` builds batches
``w, w + n, ...``, so the batches do not depend on the worker count, and resuming at batch ``b`` decodes
nothing before it (``state_dict`` / ``load_state_dict`` hold the position).

Bad samples raise, naming the file. With ``skip_bad_samples=True`` they are skipped instead: a bad record
is left out when the dataset is listed, a training sample that fails to decode is replaced by a random
other one (drawn from (seed, rank, position), so the stream stays reproducible), an evaluation sample is
dropped. Each skipped file is logged once, and the loader's ``skipped`` (file -> reason) and
``num_skipped`` give the totals to the trainer's metrics and the evaluation JSON.
"""
from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..utils import comm
from .catalog import DatasetCatalog
from .decode import BadSampleError, collect_bad_records

__all__ = ["Batch", "StreamLoader", "TrainingSampler", "build_test_loader", "build_train_loader",
           "get_dataset_dicts", "keep_large_allocations", "trivial_batch_collator"]

logger = logging.getLogger(__name__)


def trivial_batch_collator(batch: list) -> list:
    """A batch is the list of mapper dicts."""
    return batch


def get_dataset_dicts(dataset, skip_bad: bool = False) -> list[dict]:
    """Records from a registered name, a list of names, or a list of records (returned as is).

    ``skip_bad``: records the lister rejects (missing label, unreadable image header) are left out and
    logged instead of raising.
    """
    if isinstance(dataset, str):
        dataset = [dataset]
    if isinstance(dataset, Sequence) and dataset and all(isinstance(d, str) for d in dataset):
        records = []
        for name in dataset:
            if not skip_bad:
                records += DatasetCatalog.get(name)
                continue
            with collect_bad_records() as rejected:
                records += DatasetCatalog.get(name)
            for err in rejected:
                logger.warning("skipped while listing %s: %s", name, err)
            if rejected:
                logger.warning("%s: %d record(s) skipped while listing (skip_bad_samples=True)", name,
                               len(rejected))
        where = ", ".join(dataset)
    else:
        records, where = list(dataset), "the given record list"
    if not records:
        raise ValueError(f"no samples in {where}")
    return records


class TrainingSampler:
    """Infinite stream of indices in ``[0, size)``: a new seeded permutation per epoch (or ``0..size-1``
    repeated when ``shuffle=False``), sharded as ``stream[rank::world_size]``. Yields (position, index)."""

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        if size <= 0:
            raise ValueError(f"TrainingSampler needs a non-empty dataset, got size {size}")
        self.size, self.shuffle, self.seed, self.rank, self.world_size = size, shuffle, seed, rank, world_size

    def _indices(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed)
        while True:
            order = torch.randperm(self.size, generator=g) if self.shuffle else torch.arange(self.size)
            yield from order.tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        stream = itertools.islice(self._indices(), self.rank, None, self.world_size)
        yield from enumerate(stream)


class Batch(list):
    """A batch of mapper dicts; ``skipped`` lists ``(file, reason)`` of the samples skipped to build it."""

    def __init__(self, items=(), skipped=None, error=None):
        super().__init__(items)
        self.skipped = list(skipped or [])
        self.error = error  # (file, message) of a bad sample that stops the loader (without skip_bad)


class _BatchStream(IterableDataset):
    """(position, index) pairs -> :class:`Batch` es of ``batch_size`` mapper outputs.

    Batch ``b`` holds positions ``b * batch_size ...``; worker ``w`` of ``n`` yields batches
    ``start + w, start + w + n, ...`` (the DataLoader takes them round-robin, i.e. in order).
    ``substitute``: replace a bad sample by a random other record (training) instead of dropping it.
    """

    def __init__(self, records, mapper, pairs, batch_size: int, seed: int, rank: int, skip_bad: bool,
                 substitute: bool):
        self.records, self.mapper, self.pairs, self.batch_size = records, mapper, pairs, batch_size
        self.seed, self.rank, self.skip_bad, self.substitute = seed, rank, skip_bad, substitute
        self.start = 0  # first batch to produce

    def __len__(self) -> int:  # finite streams only (evaluation); lets callers show progress
        return -(-len(self.pairs) // self.batch_size) - self.start

    def _map(self, k: int, idx: int, skipped: list) -> dict | None:
        for attempt in range(_MAX_SUBSTITUTES + 1):
            seed = [self.seed, self.rank, k] + ([attempt] if attempt else [])
            rng = np.random.default_rng(seed)
            if attempt:
                idx = int(rng.integers(len(self.records)))
            try:
                return self.mapper(self.records[idx], rng)
            except BadSampleError as e:
                if not self.skip_bad:
                    split = "train" if self.substitute else "test"
                    problem = str(e)[len(e.path) + 2:] if str(e).startswith(e.path + ": ") else str(e)
                    raise BadSampleError(e.path, f"{problem}. Fix or remove this file, or set "
                                         f"dataloader.{split}.skip_bad_samples=True to skip bad samples "
                                         "(each is named in the log and counted)") from None
                skipped.append((e.path, str(e)))
                if not self.substitute:
                    return None
        raise RuntimeError(f"{_MAX_SUBSTITUTES + 1} samples in a row could not be read (last: "
                           f"{skipped[-1][1]}); the dataset looks broken, not just a few files")

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        first = (self.start + wid) * self.batch_size
        stride = nw * self.batch_size
        pairs = itertools.islice(iter(self.pairs), first, None)
        while True:
            chunk = list(itertools.islice(pairs, self.batch_size))
            if not chunk:
                return
            skipped: list = []
            try:
                out = [self._map(k, idx, skipped) for k, idx in chunk]
            except BadSampleError as e:  # handed to the main process whole: a worker's raise loses its type
                yield Batch([], skipped, error=(e.path, str(e)[len(e.path) + 2:]))
                return
            yield Batch([x for x in out if x is not None], skipped)
            next(itertools.islice(pairs, stride - self.batch_size, stride - self.batch_size), None)


_MAX_SUBSTITUTES = 10


class StreamLoader(DataLoader):
    """DataLoader over a :class:`_BatchStream` that counts skipped samples and can resume in O(1).

    ``state_dict()`` is ``{"batch": batches handed out, "skipped": {file: reason}}``; ``load_state_dict``
    makes the next iterator start at that batch without decoding the ones before it.
    """

    def __init__(self, stream: _BatchStream, **kwargs):
        super().__init__(stream, batch_size=None, **kwargs)
        self.skipped: dict[str, str] = {}
        self.num_skipped = 0  # skip events (a file is counted each time the stream meets it)
        self._handed_out = 0

    def __iter__(self):
        self._handed_out = self.dataset.start
        for batch in super().__iter__():
            if batch.error is not None:
                raise BadSampleError(*batch.error)
            for path, reason in batch.skipped:
                self.num_skipped += 1
                if path not in self.skipped:
                    self.skipped[path] = reason
                    logger.warning("skipped sample #%d (%d distinct files so far): %s", self.num_skipped,
                                   len(self.skipped), reason)
            self._handed_out += 1
            if len(batch):
                yield batch

    def state_dict(self) -> dict:
        return {"batch": self._handed_out, "num_skipped": self.num_skipped, "skipped": dict(self.skipped)}

    def load_state_dict(self, state: dict) -> None:
        start = int(state.get("batch", 0))
        if start != self.dataset.start:
            self._iterator = None  # persistent workers hold the old start: let them go
        self.dataset.start = start
        self.num_skipped = int(state.get("num_skipped", 0))
        self.skipped = dict(state.get("skipped", {}))
        if start:
            logger.info("Data stream resumes at batch %d (consumed samples are not decoded again)", start)


def keep_large_allocations(limit_bytes: int = 512 << 20) -> bool:
    """Let glibc keep freed buffers up to ``limit_bytes`` in the heap instead of unmapping them.

    By default every buffer above 32 MB (a 19 x 512 x 1024 float32 soft label is 40 MB, a decoded
    1024 x 2048 float image 25 MB) is a fresh mmap whose pages fault in on first touch, which costs more
    than the resampling itself. Returns False where this is not glibc. Loader workers call it; a training
    process can too (or set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment).
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, int(limit_bytes))
                    and libc.mallopt(m_trim_threshold, 2 * int(limit_bytes)))
    except (OSError, AttributeError):
        return False


def _worker_init(seed: int, rank: int):
    def init(worker_id: int) -> None:
        s = (seed * 1000003 + rank * 1009 + worker_id) % 2**31
        random.seed(s)
        np.random.seed(s)  # noqa: NPY002 (for libraries that use the legacy global RNG)
        torch.manual_seed(s)
        torch.set_num_threads(1)  # workers already run in parallel; avoid oversubscribing the cores
        keep_large_allocations()
    return init


def build_train_loader(dataset, mapper, total_batch_size: int, num_workers: int = 0, seed: int = 0, *,
                       shuffle: bool = True, skip_bad_samples: bool = False) -> StreamLoader:
    """Infinite training loader of ``list[dict]`` batches of ``total_batch_size / world_size`` samples.

    Args:
        dataset: registered name(s) or a list of records.
        mapper: callable ``mapper(record, rng) -> dict`` (e.g. ``SoftLabelDatasetMapper``).
        total_batch_size: batch size summed over all processes.
        num_workers: loader worker processes (0: load in the calling process); the batches are the same.
        seed: seeds the index permutations and every sample's augmentation.
        skip_bad_samples: skip unreadable / invalid samples (logged, counted, replaced by random other
            samples) instead of raising.
    """
    records = get_dataset_dicts(dataset, skip_bad=skip_bad_samples)
    rank, world = comm.rank_and_world()
    if total_batch_size <= 0 or total_batch_size % world:
        raise ValueError(f"total_batch_size={total_batch_size} must be a positive multiple of the world size "
                         f"{world}")
    batch = total_batch_size // world
    sampler = TrainingSampler(len(records), shuffle, seed, rank, world)
    stream = _BatchStream(records, mapper, sampler, batch, seed, rank, skip_bad_samples, substitute=True)
    logger.info("Training loader: %d samples, batch %d per process, %d workers, seed %d",
                len(records), batch, num_workers, seed)
    return StreamLoader(stream, num_workers=num_workers, collate_fn=trivial_batch_collator,
                        worker_init_fn=_worker_init(seed, rank), persistent_workers=num_workers > 0)


def build_test_loader(dataset, mapper, num_workers: int = 0, *,
                      skip_bad_samples: bool = False) -> StreamLoader:
    """Sequential loader of one-sample ``list[dict]`` batches; with several processes each takes a
    contiguous share of the records (as detectron2's InferenceSampler).

    ``skip_bad_samples``: drop unreadable samples (listed in the log and in the evaluation JSON as
    ``skipped_inputs``) instead of raising; the metrics then cover the remaining images only.
    """
    records = get_dataset_dicts(dataset, skip_bad=skip_bad_samples)
    rank, world = comm.rank_and_world()
    share = (len(records) + world - 1) // world
    pairs = [(k, k) for k in range(rank * share, min((rank + 1) * share, len(records)))]
    stream = _BatchStream(records, mapper, pairs, 1, 0, rank, skip_bad_samples, substitute=False)
    return StreamLoader(stream, num_workers=num_workers, collate_fn=trivial_batch_collator,
                        worker_init_fn=_worker_init(0, rank))
