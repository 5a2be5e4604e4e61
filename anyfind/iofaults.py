"""Storage failures of a write, as one clear sentence (StorageError) instead of a traceback.

The causes arrive in several disguises: an OSError from our own files, an
sqlalchemy OperationalError from SQLite ("database or disk is full", "attempt to write a
readonly database"), a RuntimeError from FAISS's writer. Each is recognised here once.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import StorageError

_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "input/output error",
    errno.EFBIG: "file too large for this file system or process limit",
}
# Words in SQLite's and FAISS's messages -> errno.
_SIGNS = (
    ("database or disk is full", errno.ENOSPC),
    ("no space left", errno.ENOSPC),
    ("readonly database", errno.EROFS),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("unable to open database file", errno.EACCES),
    ("disk i/o error", errno.EIO),
    ("file too large", errno.EFBIG),
)
_HINTS = {
    errno.ENOSPC: "free some space and run it again: it resumes where it stopped",
    errno.EDQUOT: "free some space and run it again: it resumes where it stopped",
    errno.EFBIG: "raise the file size limit and run it again",
    errno.EIO: "check the disk, then run `anyfind check`",
}
_READ_ONLY_HINT = "the index can still be searched; writing needs a writable index directory"


def storage_errno(exc: BaseException) -> int | None:
    """The errno behind a storage failure, or None if `exc` is something else."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _REASONS:
            return exc.errno
        if not isinstance(exc, OSError):
            text = str(getattr(exc, "orig", None) or exc).lower()
            for sign, code in _SIGNS:
                if sign in text and _from_storage(exc):
                    return code
        exc = exc.__cause__ or exc.__context__
    return None


def _from_storage(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".")[0]
    return module in ("sqlalchemy", "sqlite3", "faiss") or isinstance(exc, RuntimeError)


def unwritable(directory: Path) -> int | None:
    """Why nothing can be written in `directory` (an errno), or None if it looks writable:
    a read-only file system, no write permission, or not one free block."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if not os.access(directory, os.W_OK):
        return errno.EACCES
    if st.f_bfree == 0 or (os.geteuid() != 0 and st.f_bavail == 0):
        return errno.ENOSPC
    return None


def storage_error(exc: BaseException | None, directory: Path) -> StorageError | None:
    """A StorageError naming the index and what to do, or None when `exc` is not one.
    With exc None: the error for a directory that cannot be written at all, if so."""
    code = storage_errno(exc) if exc is not None else unwritable(directory)
    if code is None:
        return None
    if code in (errno.EIO, errno.EROFS, errno.EACCES):
        # SQLite says "disk I/O error" when it cannot even create its -shm file, and a
        # store opened read-only says "readonly": the directory tells the real cause.
        code = unwritable(directory) or code
    hint = _HINTS.get(code, _READ_ONLY_HINT)
    return StorageError(f"cannot write the index at {directory}: {_REASONS[code]}; work "
                        f"committed before this is kept ({hint})")
