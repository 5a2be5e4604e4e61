"""A query's examples, read with the guards indexing applies: an image (a PIL image, a
path or an http(s) URL) and a spoken clip (transcribed by the index's one transcriber)."""

from __future__ import annotations

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
    try:
        return extract_image(Blob.from_bytes(data, path="query"), None, _Limits(max_pixels)).image
    except ExtractionError as exc:
        raise QueryError(f"cannot use {shown} as a query image: {exc}") from None


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


def transcribe_query(opened: OpenIndex, audio: Any) -> str:
    """The words of a spoken clip (a path to a regular file: a FIFO would block the
    decoder's open forever)."""
    check_regular(audio)
    return opened.transcriber.transcribe(str(audio)).text


def image_tag_vector(opened: OpenIndex, encoder: Any, image: Any):
    """A text space's view of a query image: the weighted mean of its tag names."""
    return opened.tag_vectors.of_image(opened.tagger, encoder, image)
