"""A query's examples, read with the guards indexing applies: an image (a PIL image, a
path or an http(s) URL) and a spoken clip (transcribed by the index's one transcriber)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import ExtractionError, QueryError
from ..fetch import check_regular, read_example

if TYPE_CHECKING:
    from .open_index import OpenIndex


class _Limits:
    """What extract_image reads from an extraction context: only the pixel cap."""

    def __init__(self, max_image_pixels: int):
        self.max_image_pixels = max_image_pixels


def load_query_image(image: Any, max_pixels: int) -> Any:
    """A PIL image under the pixel cap, decoded no larger than the models need; a
    QueryError in one sentence for anything else."""
    from ..connectors.base import Blob
    from ..extract.image import extract_image, to_rgb

    if hasattr(image, "size") and hasattr(image, "mode"):  # a PIL image already
        width, height = image.size
        if width * height > max_pixels:
            raise QueryError(f"query image of {width}x{height} pixels exceeds the "
                             f"{max_pixels} pixel limit")
        return to_rgb(image)
    data = read_example(image)
    shown = str(image) if isinstance(image, str) else "query image"
    pixels = _stored_pixels(data)
    if pixels is not None and pixels[2] not in SHRINKS_WHILE_DECODING \
            and QUERY_WHOLE_PIXELS < pixels[0] * pixels[1] <= max_pixels:  # (over: the cap's)
        raise QueryError(f"{shown}: a {pixels[2] or 'query'} image of {pixels[0]}x{pixels[1]} "
                         f"pixels is too large to search with (at most "
                         f"{QUERY_WHOLE_PIXELS // 1_000_000} MP; a JPEG may be larger)")
    try:
        with _HEAVY:  # a few decodes at once: each may hold hundreds of MB
            return extract_image(Blob.from_bytes(data, path="query"), None,
                                 _Limits(max_pixels)).image
    except ExtractionError as exc:
        raise QueryError(f"cannot use {shown} as a query image: {exc}") from None


# A query image is decoded whole unless its format shrinks while decoding (JPEG's draft
# mode): a 388 KB PNG of 99.98 MP took 800 MB a request, eight at once a server.
QUERY_WHOLE_PIXELS = 40_000_000
SHRINKS_WHILE_DECODING = ("JPEG",)
_HEAVY = threading.BoundedSemaphore(2)


def _stored_pixels(data: bytes) -> tuple[int, int, str | None] | None:
    """(width, height, format) from the header alone; None when PIL cannot say (the
    decoding below then reports what is wrong)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size[0], img.size[1], img.format
    except Exception:  # noqa: BLE001
        return None


MIN_READ_WORDS = 3  # a query image showing fewer words is searched by its pixels alone


def read_query_image(opened: OpenIndex, picture: Any) -> str | None:
    """The words a decoded query image (load_query_image) shows, a screenshot of a slide,
    read by the index's OCR engine; None when it shows too few, or the index reads no
    pixels."""
    engine = opened.ocr
    if engine is None:
        return None
    from ..extract.pixels_text import read_pixels, text_of

    text = text_of(read_pixels(engine, picture))
    return text if len(text.split()) >= MIN_READ_WORDS else None


MAX_QUERY_SECONDS = 120.0  # a spoken query: a question, not a recording to index
# Wall-clock time its transcription may take (120 s of sound takes ~10 s here on 2 cores
# with tiny.en): past it, the query is an error and the model is free for the next one.
QUERY_AUDIO_DEADLINE = 60.0


class _Until:
    """Set once the process stops or the deadline passes (what transcribe() polls)."""

    def __init__(self, stopping, seconds: float):
        self.stopping, self.deadline = stopping, time.monotonic() + seconds

    def is_set(self) -> bool:
        return self.stopping.is_set() or self.late()

    def late(self) -> bool:
        return time.monotonic() > self.deadline


def transcribe_query(opened: OpenIndex, audio: Any) -> str:
    """The words of a spoken clip (a path to a regular file: a FIFO would block the
    decoder's open forever), at most MAX_QUERY_SECONDS long: its header is checked before
    anything decodes, and the decoding stops there whatever the header said."""
    from ..audio.transcribe import Cancelled, TooLong
    from ..extract.audio_decode import probe

    check_regular(audio)
    declared = probe(str(audio)).get("duration")  # an unreadable clip: its ExtractionError
    if declared and declared > MAX_QUERY_SECONDS:
        raise QueryError(f"a spoken query is at most {MAX_QUERY_SECONDS:g} s "
                         f"(this clip: {declared:.0f} s)")
    until = _Until(opened.stopping, QUERY_AUDIO_DEADLINE)
    try:
        return opened.transcriber.transcribe(str(audio), max_seconds=MAX_QUERY_SECONDS,
                                             cancelled=until).text
    except TooLong:
        raise QueryError(f"a spoken query is at most {MAX_QUERY_SECONDS:g} s (this clip "
                         "holds more than its header says)") from None
    except Cancelled:
        if until.late() and not opened.stopping.is_set():
            raise QueryError(f"the spoken query took over {QUERY_AUDIO_DEADLINE:g} s to "
                             "transcribe: send a shorter clip") from None
        raise QueryError("the server is stopping: the spoken query was not finished "
                         "(send it again)") from None


def image_tag_vector(opened: OpenIndex, encoder: Any, image: Any):
    """A text space's view of a query image: the weighted mean of its tag names."""
    return opened.tag_vectors.of_image(opened.tagger, encoder, image)
