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
    spaces: dict[str, float] = field(default_factory=dict)  # per-signal scores that fused

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def snippet(text: str, highlights: list[list[int]], width: int = 240
            ) -> tuple[str, list[tuple[int, int]]]:
    """A window of at most `width` characters around the first highlight, whitespace
    collapsed, with the highlight spans moved into it."""
    start = 0
    if highlights and len(text) > width:
        first = highlights[0][0]
        start = max(0, first - width // 4)
        if start:
            space = text.find(" ", start, first)
            start = space + 1 if space >= 0 else start
    end = min(len(text), start + width)
    out: list[str] = []
    where: dict[int, int] = {}  # original index -> index in out
    for i in range(start, end):
        ch = text[i]
        if ch.isspace():
            if not out or out[-1] == " ":
                where[i] = len(out)
                continue
            ch = " "
        where[i] = len(out)
        out.append(ch)
    where[end] = len(out)
    body = "".join(out).strip()
    lead = len("".join(out)) - len("".join(out).lstrip())
    spans = []
    for a, b in highlights:
        if a >= start and b <= end:
            spans.append((where[a] - lead, where[b] - lead))
    prefix = "..." if start > 0 else ""
    suffix = "..." if end < len(text) else ""
    shift = len(prefix)
    return prefix + body + suffix, [(a + shift, b + shift) for a, b in spans]
