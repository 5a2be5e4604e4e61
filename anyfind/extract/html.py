"""HTML: the readable text of a page, one paragraph per block element, boilerplate removed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import require
from .base import Extracted, Section

if TYPE_CHECKING:
    from bs4 import Tag

    from ..connectors.base import Blob

_DROP = ["script", "style", "noscript", "template", "nav", "aside", "iframe", "svg", "canvas"]
_DROP_ROLES = ["navigation", "banner", "contentinfo", "complementary", "search"]
_PAGE_CHROME = ["header", "footer"]
_SPACE = re.compile(r"\s+")
_BLOCKS = frozenset(
    "address article blockquote caption dd details div dl dt fieldset figcaption figure form "
    "h1 h2 h3 h4 h5 h6 hr li main ol p pre section summary table tbody td tfoot th thead tr ul"
    .split()
)  # fmt: skip


def extract_html(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    bs4 = require("bs4", "documents")
    require("lxml", "documents")
    # From bytes, BeautifulSoup honours a BOM or <meta charset> and otherwise detects.
    soup = bs4.BeautifulSoup(blob.read(), "lxml")
    title = _title(soup)
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": _DROP_ROLES}):
        tag.decompose()
    for tag in soup.find_all(_PAGE_CHROME):
        # <header>/<footer> inside an article or <main> belong to its content (its title).
        if not tag.find_parent(["article", "main"]):
            tag.decompose()
    root = soup.find("main") or _single(soup.find_all("article")) or soup.body or soup
    text = "\n\n".join(_paragraphs(root, bs4))
    metadata: dict[str, str] = {}
    if soup.original_encoding:
        metadata["encoding"] = soup.original_encoding
    html = soup.find("html")
    if html is not None and isinstance(lang := html.get("lang"), str) and lang.strip():
        metadata["language"] = lang.strip()
    return Extracted(sections=[Section(text)] if text else [], title=title, metadata=metadata)


def _title(soup) -> str | None:
    for tag in (soup.find("title"), soup.find("h1")):
        if tag is not None and (text := " ".join(tag.get_text(" ").split())):
            return text
    return None


def _single(tags: list) -> Tag | None:
    return tags[0] if len(tags) == 1 else None


def _paragraphs(root: Tag, bs4) -> list[str]:
    """Walk the tree (iteratively: pages can nest deeper than Python's recursion limit),
    starting a new paragraph at every block boundary."""
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        lines = (" ".join(line.split()) for line in "".join(current).split("\n"))
        if text := "\n".join(line for line in lines if line):
            paragraphs.append(text)
        current.clear()

    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, bs4.element.NavigableString):
            if not isinstance(node, bs4.element.PreformattedString):  # comments, doctype...
                current.append(_SPACE.sub(" ", node))  # source newlines are just spaces
            continue
        if not isinstance(node, bs4.element.Tag):
            continue
        if node.name == "br":
            current.append("\n")
            continue
        block = node.name in _BLOCKS
        if block:
            flush()
        if leaving:
            continue
        if node.name == "pre":
            if text := node.get_text().strip("\n"):
                paragraphs.append(text)
            continue
        if block:
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.contents))
    flush()
    return paragraphs
