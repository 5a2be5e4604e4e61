"""Storage failures of a write, as one clear sentence (StorageError) instead of a traceback.

The causes arrive in several disguises: an OSError from our own files, an
sqlalchemy OperationalError from SQLite ("database or disk is full", "attempt to write a
readonly database"), a RuntimeError from FAISS's writer. Each is recognised here once.
"""

from __future__ import annotations

import errno
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


def storage_error(exc: BaseException, directory: Path) -> StorageError | None:
    """A StorageError naming the index and what to do, or None when `exc` is not one."""
    code = storage_errno(exc)
    if code is None:
        return None
    hint = _HINTS.get(code, _READ_ONLY_HINT)
    return StorageError(f"cannot write the index at {directory}: {_REASONS[code]}; work "
                        f"committed before this is kept ({hint})")
