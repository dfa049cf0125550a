"""One sandbox per work directory: an exclusive lock held for the sandbox's lifetime.

Two sandboxes in one work directory would overwrite each other's kubeconfig and write to the
same logs. :class:`WorkdirLock` takes ``fcntl.flock`` on ``<workdir>/sandbox.lock`` and
writes the holder's pid into it; the kernel releases the lock when the holder closes the
file or dies, even by SIGKILL, so a stale file never blocks the next sandbox. The file
itself is never deleted (deleting a lock file lets two processes lock two different files).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_NAME = "sandbox.lock"


class WorkdirBusy(RuntimeError):
    """Another sandbox holds the work directory; the message names it and its pid."""

    def __init__(self, workdir: Path, pid: int | None) -> None:
        self.workdir = workdir
        self.pid = pid
        holder = f"pid {pid}" if pid else "pid unknown"
        super().__init__(
            f"another sandbox ({holder}) is already running in {workdir}; stop it first, or "
            f"give this one its own directory with --workdir DIR")


class WorkdirLock:
    """``acquire()`` or :class:`WorkdirBusy`; ``release()`` (idempotent) lets the next one in.

    The descriptor is not inherited by child processes (Python opens files
    non-inheritable), so the operator and workers never keep the lock alive.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir.resolve()
        self.path = self.workdir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> WorkdirLock:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise WorkdirBusy(self.workdir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no pid of a process that no longer holds it
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The pid the holder wrote, or None (not written yet, or not a number)."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
    except (OSError, ValueError):
        return None
