"""ToyCity: a small synthetic street-scene dataset written in the exact Cityscapes layout and naming.

    <root>/toycity/leftImg8bit/{train,val}/{city}/{city}_{seq:06d}_000019_leftImg8bit.png
    <root>/toycity/gtFine/{train,val}/{city}/{city}_{seq:06d}_000019_gtFine_labelTrainIds.png  (+ _color.png)
    <root>/toycity/toycity.json     marker: generator version + parameters + class table

Scenes come from :func:`scene.render_scene` (rendered at ``supersample`` x the size, box-filtered
image, majority-class label). Generation is deterministic for a given version and parameters (each scene
has its own random stream, so worker processes write the same files as one process), and atomic: files
are written to a temporary folder that is renamed into place, under a file lock.
"""
from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from ..catalog import DatasetNotFoundError
from ..datasets.builtin_meta import CITYSCAPES_CLASSES, CITYSCAPES_COLORS
from .scene import render_scene, scene_style

__all__ = ["GENERATOR_VERSION", "TOYCITY_SIZES", "ToyCityParams", "ensure_toycity", "generate_toycity",
           "generation_workers", "label_to_color"]

logger = logging.getLogger(__name__)
GENERATOR_VERSION = 2
MARKER = "toycity.json"
CITIES = {"train": ("brickton", "pixelheim", "voxelstadt"), "val": ("blurberg", "aliasville")}
WORKERS_ENV = "SOFTLABELSEG_TOYCITY_WORKERS"


# Registered sizes (H, W): the default set and two larger renderings of the same scenes, up to Cityscapes'
# 1024 x 2048. Objects are sized in metres: a pole 1-2 pixels wide at 256 x 512 is 4-8 pixels at full size.
TOYCITY_SIZES = ((256, 512), (512, 1024), (1024, 2048))


@dataclasses.dataclass(frozen=True)
class ToyCityParams:
    """Size and style of the generated set. Defaults: 240 train + 48 val clean scenes at 256 x 512.

    ``supersample`` None: 4 below 512 rows, else 2 (the canvas is then at least 1024 rows either way).
    ``scene``: ``clean`` or ``cluttered`` (denser objects, ragged canopies, annotation error; ``scene.py``).
    """

    height: int = 256
    width: int = 512
    num_train: int = 240
    num_val: int = 48
    seed: int = 0
    supersample: int | None = None
    scene: str = "clean"

    def __post_init__(self):
        if self.supersample is None:
            object.__setattr__(self, "supersample", 4 if self.height < 512 else 2)
        if self.height < 64 or self.width < 128:
            raise ValueError(f"ToyCity needs at least 64 x 128 pixels, got {self.height} x {self.width}")
        if self.supersample < 1:
            raise ValueError(f"ToyCity supersample must be a whole number of at least 1 (renders per output "
                             f"pixel along each axis), got {self.supersample}")
        if self.seed < 0:
            raise ValueError(f"ToyCity seed must be non-negative, got {self.seed}")
        scene_style(self.scene)  # fail early on an unknown style

    def counts(self) -> dict[str, int]:
        return {"train": self.num_train, "val": self.num_val}

    @property
    def folder(self) -> str:
        """Folder name under the datasets root: ``toycity``, plus ``_<H>x<W>`` off the default size and
        ``_cluttered`` for cluttered scenes (``toycity_512x1024_cluttered``)."""
        at_default = (self.height, self.width) == (ToyCityParams.height, ToyCityParams.width)
        size = "" if at_default else f"_{self.height}x{self.width}"
        return f"toycity{size}" + ("" if self.scene == "clean" else f"_{self.scene}")


def label_to_color(label: np.ndarray) -> np.ndarray:
    """Train ids (H, W) -> Cityscapes colours uint8 (H, W, 3) RGB; ignore (255) -> black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(CITYSCAPES_COLORS)] = CITYSCAPES_COLORS
    return lut[label]


def _marker(params: ToyCityParams) -> dict:
    fields = dataclasses.asdict(params)
    if fields["scene"] == "clean":  # clean sets keep the marker they had before styles existed
        del fields["scene"]
    return {"generator_version": GENERATOR_VERSION, "params": fields,
            "classes": CITYSCAPES_CLASSES, "colors": [list(c) for c in CITYSCAPES_COLORS],
            "ignore_label": 255}


def _write_png(path: Path, array: np.ndarray) -> None:
    if array.ndim == 3:
        array = np.ascontiguousarray(array[..., ::-1])  # RGB -> BGR for OpenCV
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")


def generation_workers(workers: int | None = None) -> int:
    """Processes that render a set: ``workers`` if given, else ``$SOFTLABELSEG_TOYCITY_WORKERS``, else 1.

    Opt-in because workers start by spawn, which re-runs the calling script's top level in each of them: a
    script that lists a dataset at import time, without an ``if __name__ == "__main__":`` guard, would wait
    on its own generation lock. The project's tools are guarded.
    """
    if workers is None and os.environ.get(WORKERS_ENV):
        try:
            workers = int(os.environ[WORKERS_ENV])
        except ValueError:
            raise ValueError(f"{WORKERS_ENV}={os.environ[WORKERS_ENV]!r} is not an integer; set a number of "
                             "processes (1 renders in this process)") from None
    if workers is None:
        workers = 1
    if workers < 1:
        raise ValueError(f"ToyCity generation needs at least 1 worker, got {workers}")
    return workers


def _render_to(out_dir: Path, params: ToyCityParams, split_idx: int, split: str, i: int) -> None:
    """Render scene ``i`` of ``split`` and write its image, train-id label and colour label."""
    cities = CITIES[split]
    city = cities[i % len(cities)]
    stem = f"{city}_{i // len(cities):06d}_000019"
    rng = np.random.default_rng([params.seed, split_idx, i, GENERATOR_VERSION])
    image, label = render_scene(rng, params.height, params.width, params.supersample, params.scene)
    img_dir, gt_dir = out_dir / "leftImg8bit" / split / city, out_dir / "gtFine" / split / city
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    _write_png(img_dir / f"{stem}_leftImg8bit.png", image)
    _write_png(gt_dir / f"{stem}_gtFine_labelTrainIds.png", label)
    _write_png(gt_dir / f"{stem}_gtFine_color.png", label_to_color(label))


class _Progress:
    """Logs "rendered k/n scenes" about every 10 s, so a long generation never looks stuck."""

    def __init__(self, total: int, every_s: float = 10.0):
        self.total, self.done, self.every_s = total, 0, every_s
        self._last = time.perf_counter()

    def step(self) -> None:
        self.done += 1
        now = time.perf_counter()
        if now - self._last >= self.every_s and self.done < self.total:
            logger.info("ToyCity: rendered %d/%d scenes", self.done, self.total)
            self._last = now


def _worker_init() -> None:
    cv2.setNumThreads(1)  # parallelism comes from the worker count, not from threads inside each


def _render_in_workers(out_dir: Path, params: ToyCityParams, jobs: list, workers: int) -> None:
    # spawn, not fork: a forked child of a process whose OpenCV, OpenMP or CUDA threads already ran
    # can wait forever on a lock one of those threads held; a fresh interpreter costs a few seconds
    with concurrent.futures.ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"),
                                                initializer=_worker_init) as pool:
        futures = [pool.submit(_render_to, out_dir, params, *job) for job in jobs]
        progress = _Progress(len(jobs))
        try:
            for future in futures:
                future.result()  # re-raises a worker's error here
                progress.step()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # do not render the rest of a set that failed
            raise


def generate_toycity(out_dir, params: ToyCityParams = ToyCityParams(), workers: int | None = None) -> Path:
    """Render all scenes into ``out_dir`` (created; must not exist) and write the marker last.

    ``workers``: processes that render scenes side by side (see :func:`generation_workers`); the files
    do not depend on it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True)
    jobs = [(split_idx, split, i) for split_idx, (split, n) in enumerate(params.counts().items())
            for i in range(n)]
    workers = min(generation_workers(workers), max(1, len(jobs)))
    if workers > 1:
        try:
            _render_in_workers(out_dir, params, jobs, workers)
            jobs = []
        except concurrent.futures.process.BrokenProcessPool:
            # a worker died (killed for memory, say): one process needs the least memory
            logger.warning("ToyCity worker processes stopped; rendering the %d scenes in this process "
                           "(set %s=1 to skip the workers)", len(jobs), WORKERS_ENV)
    progress = _Progress(len(jobs))
    for job in jobs:  # the same scenes overwrite whatever a broken pool left, byte for byte
        _render_to(out_dir, params, *job)
        progress.step()
    (out_dir / MARKER).write_text(json.dumps(_marker(params), indent=1))
    return out_dir


class NotAToyCityFolder(DatasetNotFoundError, FileExistsError):
    """The ToyCity path holds something else: it is never overwritten."""


def _check_target(target: Path) -> None:
    """Refuses, before any scene is rendered, a ToyCity path that cannot become a folder: a symbolic link
    that leads nowhere (a loop, a missing target) or a file."""
    if target.is_symlink() and not target.exists():
        raise DatasetNotFoundError(
            f"{target} is a symbolic link that leads nowhere (to {os.readlink(target)!r}: a loop or a "
            "missing target); remove it, or point it to a folder, then run again")
    if target.exists() and not target.is_dir():
        raise NotAToyCityFolder(f"{target} is a file, not a ToyCity folder; move it away or point "
                                "SOFTLABELSEG_DATASETS elsewhere")


def _matches(folder: Path, params: ToyCityParams) -> bool:
    try:
        return json.loads((folder / MARKER).read_text()) == json.loads(json.dumps(_marker(params)))
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _lock(path: Path):
    try:
        import fcntl
    except ImportError:  # non-POSIX: rely on the atomic rename alone
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_toycity(root, params: ToyCityParams = ToyCityParams(), name: str | None = None,
                   workers: int | None = None) -> Path:
    """Return ``root/name`` (default ``params.folder``), generating it first (with ``workers``, see
    :func:`generation_workers`) when absent or made by another version / parameters.

    A folder without a ToyCity marker is never touched (error). Regeneration replaces the folder atomically.
    """
    root = Path(root)
    name = params.folder if name is None else name
    target = root / name
    _check_target(target)
    if _matches(target, params):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f".{name}.lock"):
        if _matches(target, params):  # another process finished while we waited
            return target
        if target.exists() and not (target / MARKER).is_file():
            raise NotAToyCityFolder(f"{target} exists but is not a generated ToyCity folder (no {MARKER}); "
                                    "move it away or point SOFTLABELSEG_DATASETS elsewhere")
        t0 = time.perf_counter()
        workers = generation_workers(workers)
        logger.info("Generating ToyCity %s into %s with %d process(es) ...",
                    dataclasses.asdict(params), target, workers)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-tmp-", dir=root))
        try:
            generate_toycity(tmp / "data", params, workers)
            if target.exists():  # stale version / parameters: swap out, then delete
                stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=root))
                os.rename(target, stale / "data")
                logger.warning("Replaced %s made by another generator version or parameters", target)
            os.rename(tmp / "data", target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            for p in root.glob(f".{name}-stale-*"):
                shutil.rmtree(p, ignore_errors=True)
        logger.info("ToyCity ready in %.1f s: %s", time.perf_counter() - t0, target)
    return target
