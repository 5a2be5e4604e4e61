"""DOCX: body paragraphs and table cells in document order, read as a stream.

python-docx builds an lxml tree of the whole document part: ~20x its bytes (639 MB for a
73 KB file holding 30 MB of one-letter runs). Here the part is fed to lxml's parser with
a target object, a piece at a time: memory follows the text, not the markup, and the
extraction budget is charged per paragraph. What is read is what python-docx's
`paragraph.text` gives (text, tabs, breaks, non-breaking hyphens; deleted text and field
codes left out), paragraphs inside tables cell by cell, and text boxes' paragraphs as
paragraphs of their own."""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError, require
from . import budget
from .base import Extracted, Section

if TYPE_CHECKING:
    from ..connectors.base import Blob

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_DOCUMENT = "/officeDocument"  # the relationship type's tail, transitional or strict
_FEED = 1 << 20
# Run children that are text, as python-docx reads them.
_CHARS = {f"{W}tab": "\t", f"{W}ptab": "\t", f"{W}br": "\n", f"{W}cr": "\n",
          f"{W}noBreakHyphen": "-"}


def extract_docx(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    require("lxml", "documents")
    try:
        with blob.local_path() as path, zipfile.ZipFile(path) as package:
            part = _document_part(package)
            styles = _style_names(package, posixpath.join(posixpath.dirname(part),
                                                          "styles.xml"))
            paragraphs: list[str] = []
            heading: str | None = None
            for text, style in _paragraphs(package, part):
                budget.charge(len(text), f"paragraph {len(paragraphs) + 1}")
                paragraphs.append(text)
                name = styles.get(style, style).lower()
                if heading is None and name.startswith(("title", "heading")):
                    heading = text
            title, author = _core(package)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ExtractionError(f"not a readable DOCX: {exc}") from None
    metadata: dict[str, Any] = {"author": author} if author else {}
    text = "\n\n".join(paragraphs)
    return Extracted(sections=[Section(text)] if text else [], title=title or heading,
                     metadata=metadata)


def _parse(package: zipfile.ZipFile, member: str, target) -> None:
    from lxml import etree

    parser = etree.XMLParser(target=target, resolve_entities=False, no_network=True,
                             huge_tree=True)
    with package.open(member) as fh:
        while block := fh.read(_FEED):
            parser.feed(block)
    parser.close()


def _document_part(package: zipfile.ZipFile) -> str:
    """The main document's member, from the package's relationships."""
    class Rels:
        def __init__(self):
            self.target: str | None = None

        def start(self, tag, attrib):
            if tag == _REL and attrib.get("Type", "").endswith(_DOCUMENT) and not self.target:
                self.target = attrib.get("Target", "").lstrip("/")

        def end(self, tag): ...
        def data(self, text): ...
        def close(self): return self.target

    rels = Rels()
    if "_rels/.rels" in package.namelist():
        _parse(package, "_rels/.rels", rels)
    return rels.target or "word/document.xml"


def _style_names(package: zipfile.ZipFile, member: str) -> dict[str, str]:
    """Style id -> its name ("Heading1" -> "heading 1"; a localised id has an English
    name for the built-in styles)."""
    class Styles:
        def __init__(self):
            self.names: dict[str, str] = {}
            self.current: str | None = None

        def start(self, tag, attrib):
            if tag == f"{W}style":
                self.current = attrib.get(f"{W}styleId")
            elif tag == f"{W}name" and self.current:
                self.names[self.current] = attrib.get(f"{W}val", self.current)

        def end(self, tag):
            if tag == f"{W}style":
                self.current = None

        def data(self, text): ...
        def close(self): return self.names

    if member not in package.namelist():
        return {}
    styles = Styles()
    _parse(package, member, styles)
    return styles.names


_DC = "{http://purl.org/dc/elements/1.1/}"


def _core(package: zipfile.ZipFile) -> tuple[str | None, str | None]:
    """(title, author) from the package's core properties."""
    class Core:
        def __init__(self):
            self.values: dict[str, str] = {}
            self.current: str | None = None

        def start(self, tag, attrib):
            self.current = tag if tag in (f"{_DC}title", f"{_DC}creator") else None

        def end(self, tag):
            self.current = None

        def data(self, text):
            if self.current and len(self.values.get(self.current, "")) < 10_000:
                self.values[self.current] = self.values.get(self.current, "") + text

        def close(self): return self.values

    if "docProps/core.xml" not in package.namelist():
        return None, None
    core = Core()
    _parse(package, "docProps/core.xml", core)
    title = core.values.get(f"{_DC}title", "").strip() or None
    return title, core.values.get(f"{_DC}creator", "").strip() or None


class _Body:
    """Paragraphs as they end: (text, style id). A paragraph inside another (a text box)
    is one of its own; its text is not its container's."""

    def __init__(self):
        self.open: list[list[Any]] = []  # [text pieces, style id] per open paragraph
        self.done: list[tuple[str, str]] = []
        self.in_text = 0  # inside a w:t
        self.skip = 0  # inside deleted text or a field code

    def start(self, tag, attrib):
        if tag == f"{W}p":
            self.open.append([[], ""])
        elif not self.open:
            return
        elif tag == f"{W}t":
            self.in_text += 1
        elif tag in (f"{W}delText", f"{W}instrText"):
            self.skip += 1
        elif tag == f"{W}pStyle" and self.open:
            self.open[-1][1] = attrib.get(f"{W}val", "")
        elif tag in _CHARS and not self.skip:
            self.open[-1][0].append(_CHARS[tag])

    def end(self, tag):
        if tag == f"{W}p" and self.open:
            pieces, style = self.open.pop()
            if text := "".join(pieces).strip():
                self.done.append((text, style))
        elif tag == f"{W}t":
            self.in_text = max(0, self.in_text - 1)
        elif tag in (f"{W}delText", f"{W}instrText"):
            self.skip = max(0, self.skip - 1)

    def data(self, text):
        if self.in_text and self.open and not self.skip:
            self.open[-1][0].append(text)

    def close(self):
        return None


def _paragraphs(package: zipfile.ZipFile, member: str) -> Iterator[tuple[str, str]]:
    """(text, style id) of each non-empty paragraph in document order, handed on as the
    parser finds them (the budget stops a document built to expand)."""
    from lxml import etree

    body = _Body()
    parser = etree.XMLParser(target=body, resolve_entities=False, no_network=True,
                             huge_tree=True)
    with package.open(member) as fh:
        while block := fh.read(_FEED):
            parser.feed(block)
            yield from body.done
            body.done.clear()
    parser.close()
    yield from body.done
