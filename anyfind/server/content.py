"""The original bytes of an indexed item, looked up by id only.

A file:// item is streamed from the path the index stored for it (never a path from
the request); an item of any other source is opened through its connector and spooled
to a temporary file. Either way Starlette's FileResponse answers Range requests
(206 + Content-Range, several ranges, 416), which is what audio and video seeking needs.
"""

from __future__ import annotations

import stat
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
        path, cleanup = _local_file(row), None
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

    from ..indexer.children import ContentUnavailable

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


def _local_file(row: dict[str, Any]) -> Path:
    path = Path(row["path"])
    # The stored path and URI are written together by the filesystem connector.
    if not path.is_absolute() or path.as_uri() != row["uri"]:
        raise HTTPException(404, f"item {row['id']} has no local file")
    try:
        st = path.stat()
    except OSError as exc:
        raise HTTPException(404, f"the file of item {row['id']} is gone; re-sync the index") from exc
    if not stat.S_ISREG(st.st_mode):
        raise HTTPException(404, f"item {row['id']} is not a regular file")
    return path


def _spool(index: Any, row: dict[str, Any]) -> tuple[Path, BackgroundTask]:
    from ..connectors import ItemRef

    source = next((s for s in index.store.sources() if s["id"] == row["source_id"]), None)
    if source is None:
        raise HTTPException(404, f"item {row['id']} has no source")
    connector = None
    try:
        connector = index.connector(source)  # credentials restored from the index's secrets
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
