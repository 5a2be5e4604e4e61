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
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        starts = [a for a, _ in enc.offsets]
        if not starts:
            return []
        words = enc.word_ids
        # A cut is safe only where a word starts: a piece that begins inside a word
        # re-tokenises into more pieces than were counted ("bly" != "##bly").
        word_start = [t == 0 or words[t] is None or words[t] != words[t - 1]
                      for t in range(len(starts))]

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
            units.extend(self._split_long(starts, word_start, bisect_left(starts, a),
                                          bisect_left(starts, b), b))

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

    def _split_long(self, starts: list[int], word_start: list[bool], i: int, j: int,
                    end_char: int) -> list[tuple[int, int, int]]:
        """Tokens i..j (one over-long sentence) as overlapping pieces cut at word starts."""
        pieces = []
        pos = i
        while pos < j:
            end = min(pos + self.budget, j)
            if end < j:
                cut = next((t for t in range(end, pos, -1) if word_start[t]), end)
                end = cut  # a single word longer than the budget is cut inside it
            pieces.append((starts[pos], starts[end] if end < j else end_char, end - pos))
            if end >= j:
                break
            nxt = max(end - self.overlap, pos + 1)
            pos = next((t for t in range(nxt, end) if word_start[t]), end)
        return pieces

    @staticmethod
    def _make(text: str, a: int, b: int, base: int, page: int | None) -> TextChunk:
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        piece = piece.strip()
        return TextChunk(piece, base + a + lead, base + a + lead + len(piece), page)
