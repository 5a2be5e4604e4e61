"""PDF: one section per page that has text, numbered from 1."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError, require
from . import budget
from .base import Extracted, Section
from .pixels_text import read_pixels, text_of
from .text import normalise_newlines

if TYPE_CHECKING:
    from ..connectors.base import Blob


def extract_pdf(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    pypdf = require("pypdf", "documents")
    # pypdf logs what it repairs ("EOF marker not found") to stderr: the item's error
    # (or its text) says what matters, so the command line stays one line per problem.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = pypdf.PdfReader(io.BytesIO(blob.read()))
    if reader.is_encrypted:
        _decrypt(reader, pypdf)
    sections: list[Section] = []
    failures: list[Exception] = []
    read_pages: dict[str, dict[str, Any]] = {}  # page number -> what OCR read on it
    ocr = getattr(ctx, "ocr", None)
    pages = len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):
        budget.charge(0, f"page {number} of {pages}")  # before each page: time
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one bad page (odd font, broken stream) spares the others
            failures.append(exc)
            continue
        budget.count(len(text), f"page {number} of {pages}")
        text = "\n".join(line.rstrip() for line in normalise_newlines(text).split("\n"))
        if ocr is not None and len(text.strip()) < THIN_TEXT:  # a scan: read its picture
            read = _read_page(page, ocr, f"page {number} of {pages}",
                              getattr(ctx, "max_image_pixels", 100_000_000))
            if read is not None:
                read_pages[str(number)] = read
                text = "\n".join(filter(None, [text.strip(), text_of(read)]))
        if text.strip():
            sections.append(Section(text.strip(), page=number))
    if failures and len(failures) == pages:
        raise failures[0]
    metadata: dict[str, Any] = {"pages": pages}
    if failures:
        metadata["unreadable_pages"] = len(failures)
    if read_pages:
        metadata["ocr_pages"] = read_pages
    info = _info(reader)
    if author := info.get("author"):
        metadata["author"] = author
    return Extracted(sections=sections, title=info.get("title"), metadata=metadata)


THIN_TEXT = 40  # characters: a page with fewer in its text layer is read as a picture


def _read_page(page, ocr, where: str, max_pixels: int) -> dict[str, Any] | None:
    """OCR of a page without a real text layer: its largest embedded picture (a scanner
    stores each page as one), bounded before decoding. None: it has no picture."""
    from PIL import Image

    best = None
    try:
        for found in page.images:
            if found.indirect_reference is None:  # an inline image: a glyph, not a scan
                continue
            stream = found.indirect_reference.get_object()  # its size, before decoding
            width, height = int(stream.get("/Width", 0) or 0), int(stream.get("/Height", 0) or 0)
            if 0 < width * height <= max_pixels and (best is None or width * height > best[0]):
                best = (width * height, found)
        if best is None:
            return None
        picture = best[1].image
    except Exception:  # noqa: BLE001 (an undecodable picture: the page keeps its text)
        return None
    if not isinstance(picture, Image.Image):
        return None
    return read_pixels(ocr, picture.convert("RGB"), where=where)


def _decrypt(reader, pypdf) -> None:
    """Open with the empty user password (owner-only protection) or give up."""
    try:
        opened = reader.decrypt("")
    except pypdf.errors.DependencyError as exc:  # AES needs the 'cryptography' package
        raise ExtractionError(f"PDF is encrypted ({exc})") from exc
    if opened == pypdf.PasswordType.NOT_DECRYPTED:
        raise ExtractionError("PDF is encrypted")


def _info(reader) -> dict[str, str]:
    try:  # a damaged Info dictionary should not cost the text
        meta = reader.metadata
        fields = {"title": meta.title, "author": meta.author} if meta else {}
    except Exception:
        return {}
    return {k: " ".join(str(v).split()) for k, v in fields.items() if v and str(v).strip()}
