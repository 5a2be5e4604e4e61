"""One writer per index: an flock'ed file that names its holder.

The kernel drops an flock when its process dies, so a lock left by a crash is never
stale; the pid written inside is only for the message. Whoever takes the lock owns the
index's files: temp files a killed writer left behind are removed then. A write that
fails for want of storage (disk full, read-only, no permission) leaves the lock as a
StorageError: one sentence, and the index as it was after its last commit."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import AnyfindError, IndexLocked
from .fsutil import remove_temp_files
from .iofaults import storage_error

# Folders only a lock holder writes (vector files, the lexical cache, thumbnails): their
# temp files are stale.
LOCKED_FOLDERS = ("vectors", "lexical", "thumbnails")


class WriteLock:
    def __init__(self, directory: Path):
        self.path = Path(directory) / "write.lock"
        self._fd: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        if self._fd is not None:
            self._depth += 1
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            translated = storage_error(exc, self.path.parent)
            if translated is None:
                raise
            raise translated from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise IndexLocked(
                f"index {self.path.parent} is being written by another process (pid {holder}); "
                "wait for it to finish or stop it"
            ) from None
        problem = storage_error(None, self.path.parent)
        if problem is not None:  # say so now, not after loading models and reading files
            os.close(fd)
            raise problem
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        self._depth = 1
        for folder in LOCKED_FOLDERS:
            remove_temp_files(self.path.parent / folder)

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()
        if exc is not None and self._depth == 0 and not isinstance(exc, AnyfindError):
            translated = storage_error(exc, self.path.parent)
            if translated is not None:
                raise translated from exc
