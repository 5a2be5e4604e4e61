"""PDF: one section per page that has text, numbered from 1."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError, require
from .base import Extracted, Section
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
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one bad page (odd font, broken stream) spares the others
            failures.append(exc)
            continue
        text = "\n".join(line.rstrip() for line in normalise_newlines(text).split("\n"))
        if text.strip():
            sections.append(Section(text.strip(), page=number))
    pages = len(reader.pages)
    if failures and len(failures) == pages:
        raise failures[0]
    metadata: dict[str, Any] = {"pages": pages}
    if failures:
        metadata["unreadable_pages"] = len(failures)
    info = _info(reader)
    if author := info.get("author"):
        metadata["author"] = author
    return Extracted(sections=sections, title=info.get("title"), metadata=metadata)


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
