"""What extractors may need beyond the bytes: the transcriber (audio), the image pixel cap
and how small images may be decoded, all from the index that opened them.

Image tags are not made here, one image at a time, but in batches by the encoding
executor (executors/)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


class ExtractContext:
    def __init__(self, transcriber: Callable[[], Any], max_image_pixels: int = 100_000_000,
                 decode_size: Callable[[], Any] | None = None, extract_seconds: float = 120.0,
                 max_item_chars: int = 20_000_000, ocr: Callable[[], Any] | None = None):
        self._transcriber = transcriber  # None from it: audio is not indexed
        self._ocr = ocr  # None, or None from it: no text is read from pixels
        self.max_image_pixels = max_image_pixels
        # one item's budget (extract/budget.py): a document's parse time, any item's text
        self.extract_seconds = extract_seconds
        self.max_item_chars = max_item_chars
        self._decode_size = decode_size
        self.video_frames = None  # a video's frames decoded elsewhere (extract/video.py)

    @property
    def image_decode_size(self):
        """An extract.image.DecodeSize, or None: decode as large as MAX_SIDE."""
        return self._decode_size() if self._decode_size is not None else None

    def with_ocr(self, ocr: Callable[[], Any]) -> ExtractContext:
        """The same context with another OCR engine (a distributed read task's stand-in)."""
        other = copy.copy(self)
        other._ocr = ocr
        return other

    def with_video_frames(self, frames: Any) -> ExtractContext:
        """The same context for a video whose frames another task decoded."""
        other = copy.copy(self)
        other.video_frames = frames
        return other

    @property
    def ocr(self):
        """An ocr.OcrEngine, or None."""
        return self._ocr() if self._ocr is not None else None

    @property
    def transcriber(self):
        return self._transcriber()
