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
