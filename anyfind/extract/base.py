"""What extraction produces: text sections (with pages), an image, or timed segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """A run of text with where it came from (page numbers are 1-based)."""

    text: str
    page: int | None = None


@dataclass
class TimedSegment:
    """A transcribed stretch of audio, in seconds from the start of the recording."""

    start: float
    end: float
    text: str


@dataclass
class Extracted:
    """One item's content, ready for chunking.

    modality is "text" (sections), "image" (image + optional tag sections) or "audio"
    (segments). metadata is stored with the item (title, page count, EXIF, language...).
    """

    modality: str = "text"
    sections: list[Section] = field(default_factory=list)
    segments: list[TimedSegment] = field(default_factory=list)
    image: Any = None  # a PIL.Image for the vision space
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)
