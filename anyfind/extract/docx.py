"""DOCX: body paragraphs and table cells in document order."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import require
from . import budget
from .base import Extracted, Section

if TYPE_CHECKING:
    from ..connectors.base import Blob


def extract_docx(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    docx = require("docx", "documents")
    data = blob.read()
    document = docx.Document(io.BytesIO(data))
    paragraphs: list[str] = []
    heading: str | None = None
    for text, style in _blocks(document):
        budget.charge(len(text), f"paragraph {len(paragraphs) + 1}")
        paragraphs.append(text)
        if heading is None and style.startswith(("Title", "Heading")):
            heading = text
    core = document.core_properties
    title = (core.title or "").strip() or heading
    metadata: dict[str, Any] = {}
    if author := (core.author or "").strip():
        metadata["author"] = author
    text = "\n\n".join(paragraphs)
    return Extracted(sections=[Section(text)] if text else [], title=title, metadata=metadata)


def _blocks(container) -> Iterator[tuple[str, str]]:
    """(text, style name) of each non-empty paragraph, descending into tables."""
    from docx.table import Table

    for block in container.iter_inner_content():
        if isinstance(block, Table):
            # A merged cell repeats in every row/column it spans. The set keeps the lxml
            # elements alive, so the same node always comes back as the same object.
            seen: set = set()
            for row in block.rows:
                for cell in row.cells:
                    if cell._tc in seen:
                        continue
                    seen.add(cell._tc)
                    yield from _blocks(cell)
        elif text := block.text.strip():
            style = block.style.name if block.style is not None else ""
            yield text, style or ""
