"""What extractors may need beyond the bytes: models loaded once, on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ExtractContext:
    """Lazily built transcriber (audio) for one index's settings, the image pixel cap and
    how small images may be decoded (`image_decode_size`, from the index's image models).

    Image tags are not made here, one image at a time, but in batches next to the
    encoders (Index.embed_chunks)."""

    def __init__(self, transcriber: dict[str, Any] | None, device: str | None = None,
                 max_image_pixels: int = 100_000_000,
                 decode_size: Callable[[], Any] | None = None):
        self._transcriber_cfg = transcriber
        self.device = device
        self.max_image_pixels = max_image_pixels
        self._decode_size = decode_size
        self._transcriber = None

    @property
    def image_decode_size(self):
        """An extract.image.DecodeSize, or None: decode as large as MAX_SIDE."""
        return self._decode_size() if self._decode_size is not None else None

    @property
    def transcriber(self):
        if self._transcriber is None and self._transcriber_cfg is not None:
            from ..audio.transcribe import get_transcriber

            cfg = dict(self._transcriber_cfg)
            if self.device and "device" not in cfg:
                cfg["device"] = self.device
            self._transcriber = get_transcriber(**cfg)
        return self._transcriber
