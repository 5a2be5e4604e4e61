"""Token-aware chunking: windows that fit the encoder, cut at sentence ends, with overlap.

Offsets are characters in the item's full text (sections joined by blank lines), so a
hit can show and highlight its passage. A window never crosses a page boundary.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from .base import Section

SECTION_SEP = "\n\n"
# Text is tokenised at most this many characters at a time (cut at a paragraph or
# sentence end), so a huge file costs memory for its text, not for millions of offsets.
WINDOW_CHARS = 1_000_000
# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace, or at a blank line.
_BOUNDARY = re.compile(r"(?:(?<=[.!?。！？])|(?<=[.!?。！？][\"')\]]))\s+|\n\s*\n")


@dataclass
class TextChunk:
    text: str
    char_start: int
    char_end: int
    page: int | None


def windows(text: str, size: int = WINDOW_CHARS):
    """(start, piece) spans of at most `size` characters covering the text, cut at the
    last paragraph break, else sentence end, else space in the second half of each."""
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = None
        for pattern in (_PARAGRAPH, _BOUNDARY, _SPACE):
            last = None
            for match in pattern.finditer(text, start + size // 2, end):
                last = match
            if last is not None:
                cut = last.end()
                break
        cut = cut or end
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


_PARAGRAPH = re.compile(r"\n\s*\n")
_SPACE = re.compile(r"\s+")


def _units(text: str) -> list[tuple[int, int]]:
    """Sentence-like spans (start, end) covering the text without the separating space."""
    spans, pos = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.start() > pos:
            spans.append((pos, m.start()))
        pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    return spans


class Chunker:
    def __init__(self, tokenizer, max_tokens: int, overlap: int = 32):
        self.tokenizer = tokenizer
        self.budget = max(8, max_tokens - 2)  # room for [CLS] and [SEP]
        self.overlap = max(0, min(overlap, self.budget // 2))

    def token_starts(self, text: str) -> list[int]:
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        return [s for s, _ in enc.offsets]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def chunk_sections(self, sections: list[Section]) -> list[TextChunk]:
        out: list[TextChunk] = []
        offset = 0
        for section in sections:
            for start, piece in windows(section.text):
                out.extend(self._chunk_text(piece, offset + start, section.page))
            offset += len(section.text) + len(SECTION_SEP)
        return out

    def _chunk_text(self, text: str, base: int, page: int | None) -> list[TextChunk]:
        if not text.strip():
            return []
        starts = self.token_starts(text)
        if not starts:
            return []

        def tokens_in(a: int, b: int) -> int:
            return bisect_left(starts, b) - bisect_left(starts, a)

        # Units no longer than the budget: long sentences split at token boundaries.
        units: list[tuple[int, int, int]] = []  # (start, end, n_tokens)
        for a, b in _units(text):
            n = tokens_in(a, b)
            if n == 0:
                continue
            if n <= self.budget:
                units.append((a, b, n))
                continue
            i, j = bisect_left(starts, a), bisect_left(starts, b)
            step = self.budget - self.overlap
            for k in range(i, j, step):
                end_tok = min(k + self.budget, j)
                end = starts[end_tok] if end_tok < len(starts) and end_tok < j else b
                units.append((starts[k], end, end_tok - k))
                if end_tok >= j:
                    break

        chunks: list[TextChunk] = []
        i = 0
        while i < len(units):
            total, j = 0, i
            while j < len(units) and (total + units[j][2] <= self.budget or j == i):
                total += units[j][2]
                j += 1
            a, b = units[i][0], units[j - 1][1]
            chunks.append(self._make(text, a, b, base, page))
            if j >= len(units):
                break
            # Overlap: step back over trailing units that fit in the overlap budget.
            back, k = 0, j
            while k - 1 > i and back + units[k - 1][2] <= self.overlap:
                back += units[k - 1][2]
                k -= 1
            i = k
        return chunks

    @staticmethod
    def _make(text: str, a: int, b: int, base: int, page: int | None) -> TextChunk:
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        piece = piece.strip()
        return TextChunk(piece, base + a + lead, base + a + lead + len(piece), page)
