"""The writer lock of a cache file: ``flock`` on ``<filename>.lock``.

The kernel drops an ``flock`` when its holder exits, however it exits (``kill -9``, OOM
killer, power loss clears it too), so a crashed writer can never leave the cache locked;
the ``.lock`` file it leaves behind is only a name and is reused by the next writer.

A holder deletes the lock file on release. Deleting a lock file is only safe with a check
after locking, because of this race:

1. A opens ``x.lock`` (inode 1) and locks it.
2. B opens ``x.lock`` (inode 1) and waits or fails to lock it.
3. A deletes ``x.lock`` and unlocks; C creates a new ``x.lock`` (inode 2) and locks it.
4. B now locks inode 1: B and C both believe they hold the lock.

So after locking, a process checks that the path still names the inode it locked, and
starts again if not (B would see inode 2 and retry, then fail against C).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["WriterLock", "try_lock"]


class WriterLock:
    """A held lock; :meth:`release` (idempotent) deletes the lock file and unlocks."""

    def __init__(self, path: str, fd: int | None):
        self.path = path
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)  # closing the last descriptor drops the flock

    def __del__(self) -> None:
        self.release()


def try_lock(path: str) -> WriterLock | None:
    """Take the lock at ``path`` without waiting, or return ``None`` if another holds it.

    On systems without ``fcntl`` (Windows) this always succeeds: writers then rely on
    unique temporary files and atomic renames alone, so the last complete pass wins and no
    file is ever half-written, but two processes may both compute and write the cache.

    The lock file is opened without following a symbolic link and without blocking, and
    must be a regular file: a FIFO or a device at ``path`` is refused, never opened for
    long nor locked.

    Raises:
        OSError: The lock file cannot be created (e.g. the directory does not exist), or
            ``path`` is not a regular file.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return WriterLock(path, None)
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):  # checked first: nothing is opened
                raise OSError(errno.EEXIST, "it exists and is not a regular file", path)
        except FileNotFoundError:
            pass
        fd = os.open(path, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EEXIST, "it exists and is not a regular file", path)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return WriterLock(path, fd)
        os.close(fd)  # the holder we waited behind deleted it; lock the new one


def _same_file(fd: int, path: str) -> bool:
    try:
        st: Any = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return bool(st.st_ino == own.st_ino and st.st_dev == own.st_dev)
