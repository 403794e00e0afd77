"""Atomic file writes: results and checkpoints are never left half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import IO

__all__ = ["atomic_write"]


def atomic_write(path: str, write_fn: Callable[[IO[bytes]], None]) -> None:
    """Calls ``write_fn(f)`` on a binary temporary file in ``path``'s folder, fsyncs, then ``os.replace``s
    it onto ``path``; on any error the temporary file is removed and ``path`` keeps its old content."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_" + os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
