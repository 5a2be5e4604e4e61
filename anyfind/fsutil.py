"""Small filesystem helpers: atomic replace with fsync."""

from __future__ import annotations

import contextlib
import errno
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


TEMP_GLOB = ".*.tmp"  # the temp files below: ".<name>.<pid>.<random>.tmp" beside their target


def remove_temp_files(directory: Path, *, recursive: bool = True,
                      dead_writers_only: bool = False) -> int:
    """Delete temp files an interrupted atomic write left under `directory`. Recursively,
    every one: only for a folder nobody but the lock's holder writes in. With
    `dead_writers_only` (the index folder itself, whose config.json any process opening
    the index may write): only those whose writer, named in the file name, is gone."""
    removed = 0
    found = Path(directory).rglob(TEMP_GLOB) if recursive else Path(directory).glob(TEMP_GLOB)
    for path in found:
        if dead_writers_only and not _writer_gone(path.name):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def _writer_gone(name: str) -> bool:
    """Whether the process that named this temp file (".<name>.<pid>.<random>.tmp") has
    exited; False when the name carries no pid (an older writer's: left to `check`)."""
    parts = name[:-len(".tmp")].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename over the target."""
    atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_with(path: Path, writer) -> None:
    """Like atomic_write_bytes, for a writer(tmp_path) that writes the file itself.

    A writer that fails its own way (FAISS raises RuntimeError) on a full or read-only
    disk raises the OSError that says so."""
    path = Path(path)
    # The writer's pid in the name: a later writer removes a temp file whose writer is gone.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
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


def display_path(path: str | os.PathLike) -> str:
    """A path (or a command-line argument) as text that can be stored and printed: bytes
    that are not valid UTF-8 become U+FFFD, the readable part stays."""
    return os.fsencode(path).decode("utf-8", "replace")


# -- what a folder scan must never read ------------------------------------------------------
INDEX_MARKER = ".anyfind-index"  # written into every index directory (Index.open)


def is_index_dir(directory: Path) -> bool:
    """Whether `directory` holds an anyfind index (its marker, or an index's config.json
    beside its lock or secrets: indexes made before the marker). Its files (secrets,
    tokenizers, state) are never content to index."""
    directory = Path(directory)
    try:
        if (directory / INDEX_MARKER).is_file():
            return True
        if not (directory / "config.json").is_file():
            return False
        if not any((directory / n).exists() for n in ("write.lock", "secrets.json", "meta.db")):
            return False
        import json

        data = json.loads((directory / "config.json").read_text("utf-8", "replace"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "spaces" in data and "schema_version" in data


def index_dir_above(path: Path) -> Path | None:
    """The anyfind index directory that holds `path` (or is it), if any."""
    path = Path(path)
    for candidate in (path, *path.parents):
        if is_index_dir(candidate):
            return candidate
    return None


def open_regular(path: Path, *, within: Path | None = None) -> tuple[int, os.stat_result]:
    """Open `path` for reading only if it is, at the moment of opening, a regular file (a
    FIFO swapped in is refused instead of blocking forever: the open is non-blocking and
    the type is checked on the descriptor), and, with `within`, only if its real path is
    still inside that folder (a file replaced by a symlink out of its source is refused).
    Returns (fd, its fstat); the caller closes the fd."""
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, device or folder)",
                          str(path))
        if within is not None:
            real = Path(os.path.realpath(path))
            if not _inside(real, Path(os.path.realpath(within))):
                raise OSError(errno.EACCES, "resolves outside its source (a symlink)", str(path))
            try:
                again = os.stat(real)
            except OSError as exc:
                raise OSError(errno.ENOENT, "changed while opened", str(path)) from exc
            if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino):
                raise OSError(errno.EAGAIN, "changed while opened", str(path))
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return fd, st
    except BaseException:
        os.close(fd)
        raise


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
