"""Small filesystem helpers: atomic replace with fsync."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .crashpoints import crash_point


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


TEMP_GLOB = ".*.tmp"  # the temp files below: ".<name>.<random>.tmp" beside their target


def remove_temp_files(directory: Path) -> int:
    """Delete temp files an interrupted atomic write left under `directory` (recursively).
    Only for a writer that holds the index's write lock: nobody else writes there."""
    removed = 0
    for path in Path(directory).rglob(TEMP_GLOB):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename over the target."""
    atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_with(path: Path, writer) -> None:
    """Like atomic_write_bytes, for a writer(tmp_path) that writes the file itself.

    A writer that fails its own way (FAISS raises RuntimeError) on a full or read-only
    disk raises the OSError that says so."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            writer(tmp)
        except Exception as exc:
            from .iofaults import unwritable

            code = None if isinstance(exc, OSError) else unwritable(path.parent)
            if code is None:
                raise
            raise OSError(code, os.strerror(code), str(path)) from exc
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        crash_point("file.temp_written")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
