"""Jupyter notebooks: markdown and code cells, in order (outputs are left out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError, require
from .base import Extracted, Section
from .text import decode_text, markdown_title

if TYPE_CHECKING:
    from ..connectors.base import Blob


def extract_notebook(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    nbformat = require("nbformat", "documents")
    text, _ = decode_text(blob.read())
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # JSON errors, unknown versions, schema problems
        raise ExtractionError(f"not a readable notebook: {exc}") from None
    sections: list[Section] = []
    title = None
    for cell in nb.cells:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") not in ("markdown", "code") or not source.strip():
            continue
        if title is None and cell["cell_type"] == "markdown":
            title = markdown_title(source)
        sections.append(Section(source.strip()))
    metadata: dict[str, Any] = {"cells": len(nb.cells)}
    kernel = nb.metadata.get("kernelspec", {}) or {}
    if language := kernel.get("language") or nb.metadata.get("language_info", {}).get("name"):
        metadata["language"] = language
    return Extracted(sections=sections, title=title, metadata=metadata)
