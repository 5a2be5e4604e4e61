"""What extraction produces: text sections (with pages), an image, or timed segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ReadElsewhere(Exception):  # noqa: N818 (a signal, not an error)
    """A model this item needs runs in another worker of a distributed run (its OCR
    engine in its own actor pool): the item is read again there (indexer/distributed.py)."""


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
class Child:
    """An item found inside another one (an e-mail's attachment): indexed as its own item,
    linked to its parent, through the same extraction path as a file."""

    name: str
    media_type: str | None  # as declared by the container; the bytes are sniffed anyway
    data: bytes


@dataclass
class Extracted:
    """One item's content, ready for chunking.

    modality is "text" (sections), "image" (image + optional tag sections), "audio"
    (segments) or "video" (segments and kept frames, extract/video_frames.py). metadata
    is stored with the item (title, page count, EXIF, language...).
    children are items inside this one (an e-mail's attachments), indexed on their own.
    """

    modality: str = "text"
    sections: list[Section] = field(default_factory=list)
    segments: list[TimedSegment] = field(default_factory=list)
    image: Any = None  # a PIL.Image for the vision space
    frames: list[Any] = field(default_factory=list)  # a video's kept frames (video_frames.Frame)
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)
