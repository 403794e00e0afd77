"""Atomic file writes: results and checkpoints are never left half-written.

A write goes to ``.tmp_<name>.<random>`` in the target's folder, is fsynced and ``os.replace``d onto the
target. The file gets the mode a plain ``open(path, "w")`` would give (0666 minus the umask), not the
0600 of ``mkstemp``. A process killed mid-write leaves only the temporary file, which
:func:`remove_stale_temporaries` deletes when the next run starts in that folder.
"""

from __future__ import annotations

import glob
import logging
import os
import tempfile
from collections.abc import Callable
from typing import IO

__all__ = ["TMP_PREFIX", "OutputPathError", "atomic_write", "check_output_file", "current_umask",
           "folder_problem", "remove_stale_temporaries"]

TMP_PREFIX = ".tmp_"
logger = logging.getLogger(__name__)


class OutputPathError(ValueError):
    """An output path that would replace a file the command reads, an existing file of another kind, or
    that is a folder (or lies under a file)."""


def check_output_file(output, *, reads=(), suffixes: tuple[str, ...] = (), key: str = "--output") -> None:
    """Refuses (:class:`OutputPathError`, naming ``key``) to write the file ``output`` when it is one of the
    files ``reads`` names (the same file, links resolved), a folder, under a file, or an existing file whose
    name does not end in one of ``suffixes`` (a file of another kind: a checkpoint, a config). Writes
    nothing; an existing file of the right kind may be replaced."""
    output = os.fspath(output)
    if os.path.isdir(output):
        raise OutputPathError(f"{key} {output} is a folder: name the file to write, e.g. "
                              f"{os.path.join(output, 'out' + (suffixes[0] if suffixes else ''))}")
    parent = os.path.dirname(os.path.abspath(output))
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise OutputPathError(f"{key} {output} lies under {parent}, which is a file, not a folder: choose "
                              f"another {key}")
    problem = folder_problem(os.path.dirname(os.path.abspath(output)))
    if problem:
        raise OutputPathError(f"{key} {output} cannot be written: {problem}. Choose another {key}.")
    if not os.path.lexists(output):
        return
    for source in reads:
        if source and os.path.exists(source) and os.path.samefile(source, output):
            raise OutputPathError(f"{key} {output} is the file this command reads ({os.fspath(source)}): "
                                  f"writing it would destroy the input. Choose another {key}.")
    if suffixes and not output.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise OutputPathError(f"{key} {output} exists and is not a {' or '.join(suffixes)} file: writing "
                              f"would replace it. Choose a new file name, or remove that file first.")


def folder_problem(folder) -> str | None:
    """Why files cannot be created in ``folder`` (created if missing): a name in its path longer than the
    file system allows, an existing part of the path that is a file, or a folder this process cannot
    write; None when it can be used. Touches nothing."""
    folder = os.path.abspath(os.fspath(folder))
    for part in folder.split(os.sep):
        if len(os.fsencode(part)) > 255:
            return f"the name {part[:40]}... is {len(os.fsencode(part))} bytes long (at most 255)"
    probe = folder
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user"
    return None


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (else set-and-restore)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str, write_fn: Callable[[IO[bytes]], None]) -> None:
    """Calls ``write_fn(f)`` on a binary temporary file in ``path``'s folder, fsyncs, then ``os.replace``s
    it onto ``path``; on any error the temporary file is removed and ``path`` keeps its old content.

    Raises ``OSError`` naming ``path`` (and, for a full disk, saying so) when the write fails.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + os.path.basename(path) + ".", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, Exception) and _is_disk_full(e):
            raise OSError(
                28, f"cannot write {path}: no space left on the device holding {folder}; free space or "
                "choose another output folder (the previous file, if any, is unchanged)"
            ) from e
        raise


def _is_disk_full(e: BaseException) -> bool:
    """ENOSPC / EDQUOT, also when torch wraps it in a RuntimeError ("enforce fail ... inline_container")."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in (28, 122):
            return True
        text = str(e)
        if "No space left" in text or "file write failed" in text or "Disk quota" in text:
            return True
        e = e.__cause__ or e.__context__
    return False


def remove_stale_temporaries(folder: str) -> list[str]:
    """Deletes ``.tmp_*`` files that an interrupted :func:`atomic_write` left in ``folder``; returns them.

    Call it only where no other process is writing to ``folder`` (the main rank at start-up).
    """
    removed = []
    for tmp in sorted(glob.glob(os.path.join(glob.escape(folder), TMP_PREFIX + "*"))):
        if os.path.isfile(tmp):
            try:
                os.remove(tmp)
            except OSError:
                continue
            removed.append(tmp)
    if removed:
        logger.info("Removed %d unfinished temporary file(s) of an interrupted write in %s: %s",
                    len(removed), folder, ", ".join(os.path.basename(p) for p in removed))
    return removed
