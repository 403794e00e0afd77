"""One writer per run folder: an exclusive lock the operating system releases when its process ends.

``flock`` belongs to the open file, which a forked child (a data-loader worker) shares: a worker outliving a
killed owner would hold the lock on. Every forked child therefore closes its copy right after the fork, and
the descriptor is not inherited across ``exec``, so only the owner holds the lock.
"""

from __future__ import annotations

import fcntl
import os

from .preflight import OutputDirError

__all__ = ["LOCK_NAME", "RunFolderBusy", "RunLock"]

LOCK_NAME = ".softlabelseg.lock"
_HELD: set[int] = set()  # lock descriptors of this process, closed in every forked child


def _close_in_child() -> None:
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


class RunFolderBusy(OutputDirError):
    """Another live process holds the run folder."""


class RunLock:
    """``flock`` on ``<folder>/.softlabelseg.lock`` holding the owner's PID. Taken before a run writes
    anything else into the folder (creating it if needed); a second run is refused with the holder's PID.
    A killed holder leaves the file, not the lock, whatever its forked workers still do."""

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderBusy(
                f"{self.folder} is in use by another run (PID {holder}); wait for it to end, or choose "
                "another train.output_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _HELD.add(fd)
        return self

    def release(self) -> None:
        if self._fd is not None:
            _HELD.discard(self._fd)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
