"""The original bytes of an indexed item, looked up by id only.

A file:// item is streamed from the path the index stored for it (never a path from
the request); an item of any other source is opened through its connector and spooled
to a temporary file. Either way Starlette's FileResponse answers Range requests
(206 + Content-Range, several ranges, 416), which is what audio and video seeking needs.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from fastapi import HTTPException
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

# Rendered by the browser's own viewer, which a sandboxed document may not use.
VIEWER_TYPES = frozenset({"application/pdf"})
# Anything else opened as a page runs with no script and an opaque origin: an indexed
# HTML or SVG file must not be able to act as the app (or read its token).
SANDBOX = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"


def content_response(index: Any, item_id: int, download: bool = False) -> FileResponse:
    row = index.store.item(item_id)
    if row is None:
        raise HTTPException(404, f"no item {item_id}")
    name = PurePath(row["path"]).name or f"item-{item_id}"
    if row.get("parent_id") is not None:  # an attachment: cut again from its e-mail
        path, cleanup, name = _attachment(index, row)
    elif row["uri"].startswith("file://"):
        path, cleanup = _local_file(index, row)
    else:
        path, cleanup = _spool(index, row)
    media_type = row["media_type"] or "application/octet-stream"
    headers = {"Cache-Control": "private, no-cache"}
    if media_type not in VIEWER_TYPES:
        headers["Content-Security-Policy"] = SANDBOX
    return FileResponse(path, media_type=media_type, headers=headers, background=cleanup,
                        filename=name,
                        content_disposition_type="attachment" if download else "inline")


def _attachment(index: Any, row: dict[str, Any]) -> tuple[Path, BackgroundTask, str]:
    """An item found inside another: its bytes re-cut from the parent, spooled to a
    temporary file (so that Range requests work as for any file)."""
    import os
    import tempfile

    from ..errors import ContentUnavailable

    try:
        child = index.attachment(row["id"])
    except ContentUnavailable as exc:
        raise HTTPException(404, str(exc)) from exc
    except Exception as exc:  # the message may name hosts or credentials: keep it out
        raise HTTPException(502, f"the attachment of item {row['id']} cannot be read "
                                 f"({type(exc).__name__})") from exc
    fd, name = tempfile.mkstemp(prefix="anyfind-attachment-")
    with os.fdopen(fd, "wb") as out:
        out.write(child.data)
    path = Path(name)
    return path, BackgroundTask(path.unlink, missing_ok=True), child.name or path.name


def _local_file(index: Any, row: dict[str, Any]) -> tuple[Path, BackgroundTask]:
    """The indexed file, only while it is still a regular file inside its source with the
    fingerprint it was indexed with: an indexed file swapped for a symlink to /etc/shadow,
    a FIFO or another file is refused. What is served is the descriptor opened by that
    check (through /proc/self/fd where there is one), so a swap after it changes nothing."""
    import os

    from ..connectors.filesystem import path_of
    from ..fsutil import open_regular

    path = path_of(row["uri"])
    if not path.is_absolute():
        raise HTTPException(404, f"item {row['id']} has no local file")
    source = next((s for s in index.store.sources() if s["id"] == row["source_id"]), None)
    if source is None or source["kind"] != "filesystem":
        raise HTTPException(404, f"item {row['id']} has no local file")
    connector = index.opened.connector(source)
    within = None if connector.follow_symlinks else Path(os.path.realpath(connector.root))
    if within is not None and not path.is_relative_to(Path(connector.root)):
        raise HTTPException(404, f"item {row['id']} is not inside its source")
    try:
        fd, st = open_regular(path, within=within)
    except FileNotFoundError as exc:
        raise HTTPException(404, f"the file of item {row['id']} is gone; re-sync the index") from exc
    except OSError as exc:
        raise HTTPException(404, f"item {row['id']} is not a regular file inside its source"
                                 ) from exc
    if row.get("fingerprint") and not _same_file(row["fingerprint"], st):
        os.close(fd)
        raise HTTPException(409, f"the file of item {row['id']} changed since it was indexed; "
                                 "re-sync the index")
    by_fd = Path(f"/proc/self/fd/{fd}")
    return (by_fd if by_fd.exists() else path), BackgroundTask(os.close, fd)


def _same_file(fingerprint: str, st) -> bool:
    """The file's own part of its fingerprint (before a `+`: its subtitles' follow) against
    what is there now: size, mtime and, when the index kept it, the inode (a file swapped
    in through a hard link keeps size and mtime, not the inode)."""
    own = fingerprint.split("+", 1)[0]
    now = f"{st.st_size}:{st.st_mtime_ns}"
    return own == now or own == f"{now}:{st.st_ino}"


def _spool(index: Any, row: dict[str, Any]) -> tuple[Path, BackgroundTask]:
    from ..connectors import ItemRef

    source = next((s for s in index.store.sources() if s["id"] == row["source_id"]), None)
    if source is None:
        raise HTTPException(404, f"item {row['id']} has no source")
    connector = None
    try:
        connector = index.opened.connector(source)  # credentials restored from its secrets
        ref = ItemRef(uri=row["uri"], path=row["path"], size=row["size"], mtime=row["mtime"],
                      fingerprint=row["fingerprint"] or "", media_type=row["media_type"])
        local = connector.open(ref).local_path()
        path = local.__enter__()
    except Exception as exc:  # the message may name hosts or credentials: keep it out
        raise HTTPException(502, f"the {source['kind']} source of item {row['id']} cannot be "
                                 f"read ({type(exc).__name__})") from exc
    finally:
        close = getattr(connector, "close", None)
        if callable(close):
            close()
    return path, BackgroundTask(local.__exit__, None, None, None)
