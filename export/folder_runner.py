"""The Python runner's folder loop: every image of a folder through an :class:`OnnxSegmenter`, written as
``<stem>_labels.png`` and ``<stem>_overlay.png`` (the folder tools' contract,
:mod:`softlabelseg.folder_contract`). An image that fails is reported and skipped, the others go on;
outputs are written atomically and never inside the input folder.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from softlabelseg.folder_contract import IMAGE_EXTENSIONS, find_images, output_stems, output_targets

from .guards import OutputFolderError, check_output_folder, write_atomically
from .runtime import (
    ORT_ERRORS,
    ImageReadError,
    ImageTooLargeError,
    NonFiniteOutputError,
    OnnxSegmenter,
    overlay_labels,
    read_image,
)


def list_images(path: str | os.PathLike) -> list[Path]:
    """``path`` itself, or the images under folder ``path`` (recursive, sorted; the folder tools'
    extensions)."""
    path = Path(path)
    if path.is_dir():
        files = find_images(path)
        if not files:
            raise ImageReadError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under folder {str(path)!r}")
        return files
    if not path.exists():
        raise ImageReadError(f"input {str(path)!r} does not exist")
    return [path]


@dataclass
class RunStats:
    images: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def write_png(path: Path, array: np.ndarray) -> None:
    """PNG-encode ``array`` and write it atomically (:func:`~softlabelseg_export.guards.write_atomically`:
    ``path`` keeps its old content, if any, unless the whole new file is written); raises OSError naming
    ``path``."""
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise OSError(f"cannot encode {path} as PNG")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, buf.tobytes())
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from None


def _failure(file, e: BaseException) -> str:
    """"<file>: <reason>" for an image that failed in a folder run."""
    if isinstance(e, ImageReadError):
        return str(e)
    if isinstance(e, (ImageTooLargeError, NonFiniteOutputError)):
        return f"{file}: {e}"
    if isinstance(e, MemoryError):
        return f"{file}: out of memory"
    if isinstance(e, ORT_ERRORS):
        first = (str(e).strip().splitlines() or [""])[0]
        hint = (
            "; out of memory: resize the image or serve it with more memory"
            if "alloc" in first.lower() else ""
        )  # fmt: skip
        return f"{file}: onnxruntime failed ({type(e).__name__}: {first[:300]}){hint}"
    return f"{file}: {type(e).__name__}: {e}"


def segment_files(segmenter: OnnxSegmenter, inputs, output_dir, alpha=0.5, progress=True) -> RunStats:
    """Write ``<name>_labels.png`` (train ids) and ``<name>_overlay.png`` for each input image, where
    ``<name>`` keeps the image's sub-folder under ``inputs``.

    Raises :class:`~softlabelseg_export.guards.OutputFolderError` before reading anything when
    ``output_dir`` is the input folder or inside it, and :class:`~softlabelseg.folder_contract.SameStemError`
    when two inputs share a stem (``a.png``, ``a.jpg``). An image that fails (unreadable, over the memory
    budget, NaN scores, an onnxruntime error, output not writable) is reported in ``RunStats.failed``
    ("<file>: <reason>") and the run continues with the next one.
    """
    from tqdm import tqdm

    check_output_folder(inputs, output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputFolderError(f"output folder {os.fspath(output_dir)!r} is a file: choose a folder")
    files = list_images(inputs)
    root = Path(inputs) if Path(inputs).is_dir() else None
    names = output_stems(files, root, output_dir)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats = RunStats()
    meta = segmenter.meta
    start = time.perf_counter()
    for file in tqdm(files, desc="segment", unit="img", disable=not progress or len(files) < 2):
        try:
            image = read_image(file)
            labels = segmenter.predict(image)
            targets = output_targets(out, names[file])
            write_png(targets[0], labels)
            write_png(targets[1], cv2.cvtColor(overlay_labels(image, labels, meta, alpha), cv2.COLOR_RGB2BGR))
        except (MemoryError, OSError, ValueError, RuntimeError, cv2.error, *ORT_ERRORS) as e:
            stats.failed.append(_failure(file, e))
            continue
        stats.outputs += [str(t) for t in targets]
        stats.images += 1
    stats.seconds = time.perf_counter() - start
    return stats
