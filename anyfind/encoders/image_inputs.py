"""What an index's image models need from every decoded image, worked out once.

The prepare workers decode images; with this they also run each model's per-image
preprocessing (PIL resize, crop, RGB: anyfind.encoders.imageprep) and decode JPEGs only as
large as the models and the thumbnail need (extract.image.DecodeSize). The main thread then
only normalises whole batches and runs the models.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..extract.image import DecodeSize
from .imageprep import ImagePrep, PreparedImage

log = logging.getLogger("anyfind.indexer")


class ImageInputs:
    """The preps and the decode size of the models `models()` returns (the tagger and every
    image encoder), resolved on first use by whichever thread asks first (that loads the
    models)."""

    def __init__(self, models: Callable[[], Sequence[Any]], thumbnail_side: int):
        self._models = models
        self._thumbnail_side = thumbnail_side
        self._lock = threading.Lock()
        self._preps: list[ImagePrep] | None = None
        self._size: DecodeSize | None = None

    def _resolve(self) -> list[ImagePrep]:
        with self._lock:
            if self._preps is None:
                try:
                    preps = [model.image_prep() for model in self._models()]
                except Exception as exc:  # the main thread meets it again and reports it
                    log.debug("image models not available to the prepare workers: %s", exc)
                    preps = [None]
                self._preps = [p for p in preps if p is not None]
                sides = [p.min_side if p is not None else None for p in preps]
                if sides and None not in sides:
                    self._size = DecodeSize(short=max(sides), long=self._thumbnail_side)
            return self._preps

    @property
    def preps(self) -> list[ImagePrep]:
        return self._preps if self._preps is not None else self._resolve()

    def decode_size(self) -> DecodeSize | None:
        """What a decoded image must keep: None (decode as before) when a model's need is
        unknown or no model takes images."""
        self.preps  # noqa: B018 - resolves
        return self._size

    def prepare(self, image: Any) -> PreparedImage:
        """The image with every model's per-image preprocessing done."""
        return PreparedImage.of(image, self.preps)
