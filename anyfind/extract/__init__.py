"""Turn an item's bytes into text sections, an image or timed segments.

Extractors are `fn(blob, media_type, ctx) -> Extracted`, looked up by exact media type,
then by family (`text/*`). Built-ins are registered as "module:attr" strings, imported on
first use, so importing this package loads no parser (and a module not written or not
installed yet only fails the items that need it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import AnyfindError, ExtractionError, one_line
from .base import Child, Extracted, ReadElsewhere, Section, TimedSegment
from .budget import MAX_CHARS, SECONDS, Budget, spending
from .sniff import (
    DOCX,
    EML,
    EMPTY,
    EPUB,
    IPYNB,
    PDF,
    PPTX,
    canonical,
    modality_of,
    sniff_blob,
    sniff_media_type,
)
from .zipguard import ZIP_MAGIC, check_blob

if TYPE_CHECKING:
    from ..connectors.base import Blob

Extractor = Callable[["Blob", str, object | None], Extracted]

__all__ = [
    "Child",
    "Extracted",
    "Extractor",
    "Section",
    "TimedSegment",
    "extract",
    "modality_of",
    "register_extractor",
    "sniff_blob",
    "sniff_media_type",
]

_TEXT = "anyfind.extract.text:extract_text"
_HTML = "anyfind.extract.html:extract_html"
_extractors: dict[str, Extractor | str] = {
    "text/*": _TEXT,
    "text/html": _HTML,
    "application/xhtml+xml": _HTML,
    PDF: "anyfind.extract.pdf:extract_pdf",
    DOCX: "anyfind.extract.docx:extract_docx",
    PPTX: "anyfind.extract.slides:extract_pptx",
    EPUB: "anyfind.extract.ebook:extract_epub",
    EML: "anyfind.extract.mail:extract_eml",
    IPYNB: "anyfind.extract.notebook:extract_notebook",
    "text/csv": "anyfind.extract.delimited:extract_delimited",
    "text/tab-separated-values": "anyfind.extract.delimited:extract_delimited",
    "image/*": "anyfind.extract.image:extract_image",
    "audio/*": "anyfind.extract.audio:extract_audio",
    "video/*": "anyfind.extract.video:extract_video",  # frames and the sound track
    **dict.fromkeys(
        (
            "application/json",
            "application/x-ndjson",
            "application/xml",
            "application/yaml",
            "application/toml",
        ),
        _TEXT,
    ),
}
_LABELS = {PDF: "PDF", DOCX: "DOCX", "text/html": "HTML", PPTX: "PPTX", EPUB: "EPUB",
           EML: "e-mail", IPYNB: "notebook", "text/csv": "CSV"}


# Formats parsed whole into an object tree (several times their size in memory): refused
# above these sizes, far below the global cap. HTML is parsed as a stream (no tree) and
# zip-based formats are bounded by zipguard; PDF streams by pypdf's own 75 MB limit.
TREE_CAPS = {IPYNB: 64 * 1024 * 1024, EML: 128 * 1024 * 1024}


def register_extractor(pattern: str, fn: Extractor | str) -> None:
    """Register `fn` (or a "module:attr" path) for a media type or a family like "image/*"."""
    _extractors[pattern.lower()] = fn


def extract(blob: Blob, media_type: str | None = None, ctx: object | None = None) -> Extracted:
    """Extract one item. Sniffs the type when not given; every failure is an ExtractionError."""
    try:
        if media_type:
            media_type = canonical(media_type) if blob.read(1) else EMPTY
        else:
            media_type = sniff_blob(blob)
    except OSError as exc:
        raise ExtractionError(f"could not read the file: {one_line(exc, 200)}") from exc
    if media_type == EMPTY:
        raise ExtractionError("empty file")
    fn = _lookup(media_type)
    cap = TREE_CAPS.get(media_type)
    if cap is not None and blob.ref.size is not None and blob.ref.size > cap:
        raise ExtractionError(f"{_LABELS.get(media_type, media_type)} too large to parse "
                              f"({blob.ref.size} bytes > {cap})")
    try:
        if blob.read(len(ZIP_MAGIC)) == ZIP_MAGIC:  # every zip-based format, one guard
            check_blob(blob, _LABELS.get(media_type, media_type))
        with spending(Budget(getattr(ctx, "extract_seconds", SECONDS),
                             getattr(ctx, "max_item_chars", MAX_CHARS))) as budget:
            extracted = fn(blob, media_type, ctx)
            if budget.chars == 0:  # an extractor that does not count as it goes
                budget.count(sum(len(s.text) for s in extracted.sections))
        return extracted
    except (ExtractionError, ReadElsewhere):
        raise
    except AnyfindError as exc:  # e.g. MissingExtra: a per-item failure, the run goes on
        raise ExtractionError(str(exc)) from exc
    except Exception as exc:
        label = _LABELS.get(media_type, media_type)
        raise ExtractionError(f"{label} could not be parsed: {one_line(exc, 200)}") from exc


def _lookup(media_type: str) -> Extractor:
    family = media_type.partition("/")[0]
    for key in (media_type, f"{family}/*"):
        target = _extractors.get(key)
        if target is None:
            continue
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            try:
                target = getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # the module exists but needs something missing
                    raise ExtractionError(
                        f"no extractor for {media_type}: {one_line(exc, 200)}"
                    ) from exc
                raise ExtractionError(f"no extractor for {media_type}") from exc
            except Exception as exc:
                raise ExtractionError(f"no extractor for {media_type}: {one_line(exc, 200)}") from exc
            _extractors[key] = target
        return target
    if media_type == "application/octet-stream":
        raise ExtractionError("not a text file (binary content)")
    raise ExtractionError(f"no extractor for {media_type}")
