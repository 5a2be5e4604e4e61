"""Plain text, markdown, source code and text data formats (csv, json, yaml...)."""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING

from ..errors import ExtractionError
from .base import Extracted, Section

if TYPE_CHECKING:
    from ..connectors.base import Blob

NOT_TEXT = "not a text file (binary content)"

# UTF-32 first: its little-endian BOM starts with the UTF-16 one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# charset-normalizer often ties several single-byte code pages; prefer the common ones.
_PREFERRED = ("utf_8", "ascii", "cp1252", "latin_1")
_WIDE = ("utf_16", "utf_32")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1", re.M | re.S)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*$", re.M | re.S)
_YAML_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
_SETEXT = re.compile(r"^ {0,3}(\S.*?)[ \t]*\n {0,3}(?:=+|-+)[ \t]*$", re.M)


def extract_text(blob: Blob, media_type: str, ctx: object | None = None) -> Extracted:
    text, encoding = decode_text(blob.read())
    text = normalise_newlines(text)
    title = markdown_title(text) if media_type == "text/markdown" else None
    sections = [Section(text)] if text.strip() else []
    metadata: dict = {"encoding": encoding}
    if media_type == "text/markdown":  # a note: its links, embeds, tags (extract/links.py)
        from .links import parse

        note = parse(text)
        title = note["title"] or title
        if note["links"]:
            metadata["links"] = [link.to_json() for link in note["links"]]
        if note["tags"]:
            metadata["note_tags"] = note["tags"]
        if note["aliases"]:
            metadata["aliases"] = note["aliases"]
    return Extracted(sections=sections, title=title, metadata=metadata)


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of bytes that should be text; ExtractionError if they are binary."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace"), encoding
    has_nul = b"\x00" in data
    if not has_nul:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            if _mostly_utf8(text):
                return text, "utf-8"
    match = _best_match(data, wide_only=has_nul)
    if match is None:
        raise ExtractionError(NOT_TEXT)
    return match


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def markdown_title(text: str) -> str | None:
    """YAML front-matter title, else the first heading outside code fences."""
    if front := _FRONT_MATTER.match(text):
        if m := _YAML_TITLE.search(front.group(1)):
            return m.group(1).strip("'\"") or None
        text = text[front.end() :]
    body = _FENCE.sub("", text)
    found = [m for m in (_ATX.search(body), _SETEXT.search(body)) if m]
    if not found:
        return None
    return min(found, key=lambda m: m.start()).group(1).strip() or None


def _mostly_utf8(text: str) -> bool:
    """Valid multi-byte characters outnumber broken bytes: damaged UTF-8, not a code page."""
    broken = text.count("\ufffd")
    valid = sum(1 for ch in text if ord(ch) > 127) - broken
    return valid > broken


def _best_match(data: bytes, wide_only: bool) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes

    # NUL bytes only occur in text as UTF-16/32; without them short inputs often
    # "decode" as UTF-16 CJK, so those guesses are dropped.
    matches = [m for m in from_bytes(data) if m.encoding.startswith(_WIDE) == wide_only]
    if not matches:
        return None
    best = matches[0]
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    for name in _PREFERRED:
        for m in tied:
            # could_be_from_charset: code pages that decode these bytes identically.
            if name in m.could_be_from_charset:
                return data.decode(name), name
    return str(best), best.encoding
