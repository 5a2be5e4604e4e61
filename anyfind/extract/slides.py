"""PPTX: the text of every slide (titles, text boxes, tables, groups) and its notes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import require
from . import budget
from .base import Extracted, Section

if TYPE_CHECKING:
    from ..connectors.base import Blob


def extract_pptx(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    pptx = require("pptx", "documents")
    deck = pptx.Presentation(io.BytesIO(blob.read()))
    sections: list[Section] = []
    first_title: str | None = None
    for number, slide in enumerate(deck.slides, start=1):
        lines = [t for t in _texts(slide.shapes) if t]
        budget.charge(sum(map(len, lines)), f"slide {number}")
        title_shape = slide.shapes.title
        if first_title is None and title_shape is not None and title_shape.text.strip():
            first_title = title_shape.text.strip()
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                lines.append(notes.text.strip())
        if lines:
            sections.append(Section("\n\n".join(lines), page=number))  # page = slide number
    core = deck.core_properties
    metadata: dict[str, Any] = {"slides": len(deck.slides)}
    if author := (core.author or "").strip():
        metadata["author"] = author
    return Extracted(sections=sections, title=(core.title or "").strip() or first_title,
                     metadata=metadata)


def _texts(shapes) -> Iterator[str]:
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:  # a group
            yield from _texts(shape.shapes)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                cells = [c.text.strip() for c in row.cells if c.text.strip()]
                if cells:
                    yield " | ".join(cells)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text.strip()
