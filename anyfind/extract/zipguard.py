"""Every zip-based document (DOCX, PPTX, EPUB, XLSX, ODF, a zip sniffed as anything) is
checked here before any parser opens it: `extract()` calls `check_blob` for every item
whose bytes start like a zip, whatever its media type, so no extractor can forget it.

A few KB that claim to unpack to gigabytes is a zip bomb. The sizes a zip declares
bound what Python's zipfile will ever produce (it stops at the declared size), so the
guard reads only the central directory: total and per-member caps, a compression-ratio
cap and a member-count cap. Markup members are held to a lower cap, since a parser
builds a tree several times their size."""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from ..errors import ExtractionError

if TYPE_CHECKING:
    from ..connectors.base import Blob

ZIP_MAGIC = b"PK\x03\x04"
MAX_UNPACKED = 512 * 1024 * 1024  # no office document or e-book needs more
MAX_MEMBERS = 20_000
MAX_RATIO = 100  # above this many times its packed size (and 50 MB), a zip is a bomb
_RATIO_FLOOR = 50 * 1024 * 1024
# A member a parser turns into a tree (XML, XHTML): its tree costs ~10x its bytes.
MAX_MARKUP_MEMBER = 64 * 1024 * 1024
_MARKUP = (".xml", ".xhtml", ".html", ".htm", ".rels", ".opf", ".ncx", ".svg")


def check_blob(blob: Blob, what: str) -> None:
    """The same for a blob, reading only its central directory when it is seekable."""
    with blob.open() as fh:
        if not (getattr(fh, "seekable", lambda: False)()):
            data = fh.read()
            _check(io.BytesIO(data), len(data), what)
            return
        size = fh.seek(0, io.SEEK_END)
        fh.seek(0)
        _check(fh, size, what)


def _check(stream, size: int, what: str) -> None:
    try:
        infos = zipfile.ZipFile(stream).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a readable zip: the parser says why
    if len(infos) > MAX_MEMBERS:
        raise ExtractionError(f"{what} refused as a zip bomb: {len(infos)} members "
                              f"(cap {MAX_MEMBERS})")
    unpacked = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos) or 1
    if unpacked > MAX_UNPACKED or (unpacked > _RATIO_FLOOR and unpacked > MAX_RATIO * packed):
        raise ExtractionError(f"{what} refused as a zip bomb: {size} bytes would unpack "
                              f"to {unpacked} bytes")
    for info in infos:
        if info.filename.lower().endswith(_MARKUP) and info.file_size > MAX_MARKUP_MEMBER:
            raise ExtractionError(f"{what} refused: its member {info.filename} unpacks to "
                                  f"{info.file_size} bytes (cap {MAX_MARKUP_MEMBER})")
