"""Search results: one per item (or per chunk), with the passage that matched."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    rank: int
    score: float
    item_id: int
    chunk_id: int
    uri: str
    path: str
    modality: str | None
    media_type: str | None
    text: str  # the matching passage
    source: str | None = None
    title: str | None = None
    page: int | None = None
    start: float | None = None  # seconds, for audio
    end: float | None = None
    char_start: int | None = None
    char_end: int | None = None
    highlights: list[list[int]] = field(default_factory=list)  # [start, end) spans in text
    tags: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    spaces: dict[str, float] = field(default_factory=dict)  # each signal's raw score
    parent: dict[str, Any] | None = None  # an attachment's e-mail: {"id", "path"}
    # Per signal: cosine or BM25, its calibrated score, the floor, its rank (relevance.py).
    signals: dict[str, dict[str, float]] = field(default_factory=dict)
    fused: float | None = None  # the fusion value the ranking sorted by
    # Text read in the image (OCR) that holds query words: {"text", "box" (x0, y0, x1,
    # y1 as fractions of the image), "conf", "highlights"}, best first.
    regions: list[dict[str, Any]] = field(default_factory=list)
    # The best-matching passage of `text` (~240 characters) and its highlights.
    snippet: str = ""
    snippet_highlights: list[list[int]] = field(default_factory=list)
    # In a recording or a video: where it matches (search/moments.py), best first:
    # {"start", "end", "kind": speech | frame, "said", "shown", "frame": its ordinal}.
    moments: list[dict[str, Any]] = field(default_factory=list)
    # Where it sits in a notes vault (search/context.py): the notes that embed or link it,
    # each {"id", "path", "title", "kind": embed | link, "heading", "passage"}; for a
    # note, what it embeds: {"id", "path", "kind", "matches": also a result here}.
    linked_from: list[dict[str, Any]] = field(default_factory=list)
    embeds: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Results(list):
    """A page of results, and how many weaker matches the relevance floor hid."""

    def __init__(self, results: Any = (), hidden: int = 0):
        super().__init__(results)
        self.hidden = hidden



def best_anchor(text: str, highlights: list[list[int]], width: int) -> int:
    """Where the passage that matches best begins: the highlight whose window holds the
    most query words, each weighted by its rarity in this text (a passage's topic word,
    matched all over, counts less than the one word that answers), ties to the first."""
    words = [text[a:b].lower() for a, b in highlights]
    seen: dict[str, int] = {}
    for w in words:
        seen[w] = seen.get(w, 0) + 1
    best, best_score = highlights[0][0], -1.0
    for a, _ in highlights:
        lo, hi = a - width // 4, a - width // 4 + width
        inside = {words[j] for j, (x, y) in enumerate(highlights) if lo <= x and y <= hi}
        score = sum(1.0 / seen[w] for w in inside)
        if score > best_score + 1e-9:
            best, best_score = a, score
    return best


def snippet(text: str, highlights: list[list[int]], width: int = 240
            ) -> tuple[str, list[tuple[int, int]]]:
    """At most `width` characters of `text` around its best-matching passage, whitespace
    collapsed, "..." where cut, with the highlight spans moved into that string."""
    start = 0
    if highlights and len(text) > width:
        first = best_anchor(text, highlights, width)
        start = max(0, first - width // 4)
        sentence = max(text.rfind(". ", start, first), text.rfind("\n", start, first))
        space = text.find(" ", start, first)
        if start and sentence >= 0:
            start = sentence + 1  # begin on the sentence that holds the match
        elif start and space >= 0:
            start = space + 1  # begin on a word
    end = min(len(text), start + width)
    while start < end and text[start].isspace():
        start += 1
    out: list[str] = ["..."] if start > 0 else []
    length = len(out[0]) if out else 0
    where: dict[int, int] = {}  # index in text -> index in the snippet
    for i in range(start, end):
        where[i] = length
        ch = " " if text[i].isspace() else text[i]
        if ch == " " and (i + 1 == end or text[i + 1].isspace()):
            continue  # collapse runs of whitespace (and drop it at the end)
        out.append(ch)
        length += 1
    where[end] = length
    if end < len(text):
        out.append("...")
    spans = [(where[a], where[b]) for a, b in highlights if start <= a and b <= end]
    return "".join(out), spans
