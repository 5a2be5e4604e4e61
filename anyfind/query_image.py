"""A query's example image, read and decoded with the guards indexing applies."""

from __future__ import annotations

from typing import Any

from .errors import ExtractionError, QueryError
from .fetch import read_example


class _Limits:
    """What extract_image reads from an extraction context: only the pixel cap."""

    def __init__(self, max_image_pixels: int):
        self.max_image_pixels = max_image_pixels


def load_query_image(image: Any, max_pixels: int) -> Any:
    from .connectors.base import Blob
    from .extract.image import extract_image, to_rgb

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
