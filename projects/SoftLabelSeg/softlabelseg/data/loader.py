"""Data loaders: an infinite seeded training stream and a sequential evaluation loader.

Both yield ``list[dict]`` batches of mapper outputs (detectron2's trivial collation; the model stacks
targets). The training stream is a pure function of (seed, rank, world size, num_workers): indices come
from seeded permutations and sample ``k`` of a rank's stream is mapped with its own generator seeded by
(seed, rank, k). Bad samples raise, or with ``skip_bad_samples=True`` are skipped and counted in the log.
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
from .decode import BadSampleError, note_bad_input

__all__ = ["TrainingSampler", "build_test_loader", "build_train_loader", "get_dataset_dicts",
           "keep_large_allocations", "trivial_batch_collator"]

logger = logging.getLogger(__name__)


def trivial_batch_collator(batch: list) -> list:
    """A batch is the list of mapper dicts."""
    return batch


def get_dataset_dicts(dataset) -> list[dict]:
    """Records from a registered name, a list of names, or a list of records (returned as is)."""
    if isinstance(dataset, str):
        dataset = [dataset]
    if isinstance(dataset, Sequence) and dataset and all(isinstance(d, str) for d in dataset):
        records = [r for name in dataset for r in DatasetCatalog.get(name)]
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


class _MappedStream(IterableDataset):
    """(position, index) pairs -> mapper outputs; worker ``w`` of ``n`` takes positions ``k % n == w``."""

    def __init__(self, records, mapper, pairs, seed: int, rank: int, skip_bad: bool):
        self.records, self.mapper, self.pairs = records, mapper, pairs
        self.seed, self.rank, self.skip_bad = seed, rank, skip_bad

    def __len__(self) -> int:  # finite streams only (evaluation); lets callers show progress
        return len(self.pairs)

    def __iter__(self):
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for k, idx in itertools.islice(iter(self.pairs), wid, None, nw):
            rng = np.random.default_rng([self.seed, self.rank, k])
            try:
                yield self.mapper(self.records[idx], rng)
            except BadSampleError as e:
                if not self.skip_bad:
                    raise
                note_bad_input("skipped", e)


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
                       shuffle: bool = True, skip_bad_samples: bool = False) -> DataLoader:
    """Infinite training loader of ``list[dict]`` batches of ``total_batch_size / world_size`` samples.

    Args:
        dataset: registered name(s) or a list of records.
        mapper: callable ``mapper(record, rng) -> dict`` (e.g. ``SoftLabelDatasetMapper``).
        total_batch_size: batch size summed over all processes.
        num_workers: loader worker processes (0: load in the calling process).
        seed: seeds the index permutations and every sample's augmentation.
        skip_bad_samples: skip unreadable / invalid samples (counted in the log) instead of raising.
    """
    records = get_dataset_dicts(dataset)
    rank, world = comm.rank_and_world()
    if total_batch_size <= 0 or total_batch_size % world:
        raise ValueError(f"total_batch_size={total_batch_size} must be a positive multiple of the world size "
                         f"{world}")
    sampler = TrainingSampler(len(records), shuffle, seed, rank, world)
    stream = _MappedStream(records, mapper, sampler, seed, rank, skip_bad_samples)
    logger.info("Training loader: %d samples, batch %d per process, %d workers, seed %d",
                len(records), total_batch_size // world, num_workers, seed)
    return DataLoader(stream, batch_size=total_batch_size // world, num_workers=num_workers,
                      collate_fn=trivial_batch_collator, worker_init_fn=_worker_init(seed, rank),
                      persistent_workers=num_workers > 0)


def build_test_loader(dataset, mapper, num_workers: int = 0, *, skip_bad_samples: bool = False) -> DataLoader:
    """Sequential loader of one-sample ``list[dict]`` batches; with several processes each takes a
    contiguous share of the records (as detectron2's InferenceSampler)."""
    records = get_dataset_dicts(dataset)
    rank, world = comm.rank_and_world()
    share = (len(records) + world - 1) // world
    pairs = [(k, k) for k in range(rank * share, min((rank + 1) * share, len(records)))]
    stream = _MappedStream(records, mapper, pairs, 0, rank, skip_bad_samples)
    return DataLoader(stream, batch_size=1, num_workers=num_workers, collate_fn=trivial_batch_collator,
                      worker_init_fn=_worker_init(0, rank))
