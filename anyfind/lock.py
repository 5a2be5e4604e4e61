"""One writer per index: an flock on the index directory, and a file that names its holder.

The kernel drops an flock when its process dies, so a lock left by a crash is never
stale; the pid written inside is only for the message. Whoever takes the lock owns the
index's files: temp files a killed writer left behind are removed then. A write that
fails for want of storage (disk full, read-only, no permission) leaves the lock as a
StorageError: one sentence, and the index as it was after its last commit."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import AnyfindError, IndexLocked
from .fsutil import remove_temp_files
from .iofaults import storage_error

# Folders only a lock holder writes (vector files, the lexical cache, thumbnails): their
# temp files are stale.
LOCKED_FOLDERS = ("vectors", "lexical", "thumbnails")


class WriteLock:
    """`shared`: makes the lock a store reached from other folders needs besides this
    folder's (store/writer_lock.py), or None; taken after the folder's, released before."""

    def __init__(self, directory: Path, shared: Callable[[], Any] | None = None):
        self.path = Path(directory) / "write.lock"
        self.shared = shared
        self._fd: int | None = None
        self._dir_fd: int | None = None
        self._held_shared: Any = None
        self._depth = 0

    def _locked(self) -> IndexLocked:
        try:
            holder = self.path.read_text(errors="replace").strip() or "unknown"
        except OSError:
            holder = "unknown"
        return IndexLocked(
            f"index {self.path.parent} is being written by another process (pid {holder}); "
            "wait for it to finish or stop it")

    def acquire(self) -> None:
        if self._fd is not None:
            self._depth += 1
            return
        # The lock is held on the index directory itself: a lock on write.lock alone is
        # lost if someone deletes the file mid-run (a second writer would lock a new file).
        dir_fd = os.open(self.path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise self._locked() from None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            os.close(dir_fd)
            translated = storage_error(exc, self.path.parent)
            if translated is None:
                raise
            raise translated from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a writer of an older anyfind holds the file's lock
            os.close(fd)
            os.close(dir_fd)
            raise self._locked() from None
        problem = storage_error(None, self.path.parent)
        if problem is not None:  # say so now, not after loading models and reading files
            os.close(fd)
            os.close(dir_fd)
            raise problem
        self._dir_fd = dir_fd
        held = self.shared() if self.shared is not None else None
        if held is not None:
            try:
                held.acquire()
            except BaseException:
                self._dir_fd = None
                os.close(fd)
                os.close(dir_fd)
                raise
        self._held_shared = held
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        self._depth = 1
        for folder in LOCKED_FOLDERS:
            remove_temp_files(self.path.parent / folder)
        # config.json, calibration.json: any process opening the index may write those
        remove_temp_files(self.path.parent, recursive=False, dead_writers_only=True)

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        held, self._held_shared = self._held_shared, None
        if held is not None:
            held.release()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        if self._dir_fd is not None:
            fcntl.flock(self._dir_fd, fcntl.LOCK_UN)
            os.close(self._dir_fd)
            self._dir_fd = None

    @contextlib.contextmanager
    def folder_only(self) -> Iterator[WriteLock]:
        """The folder's lock without the store's: for what only this folder holds (its
        config.json, its ONNX export), so a replica folder of a cluster index never waits
        for, nor blocks, the index's writer."""
        shared, self.shared = self.shared, None
        try:
            with self:
                yield self
        finally:
            self.shared = shared

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()
        if exc is not None and self._depth == 0 and not isinstance(exc, AnyfindError):
            translated = storage_error(exc, self.path.parent)
            if translated is not None:
                raise translated from exc
