"""What extractors may need beyond the bytes: models loaded once, on first use."""

from __future__ import annotations

from typing import Any


class ExtractContext:
    """Lazily built transcriber (audio) for one index's settings, and the image pixel cap.

    Image tags are not made here, one image at a time, but in batches next to the
    encoders (Index.embed_chunks)."""

    def __init__(self, transcriber: dict[str, Any] | None, device: str | None = None,
                 max_image_pixels: int = 100_000_000):
        self._transcriber_cfg = transcriber
        self.device = device
        self.max_image_pixels = max_image_pixels
        self._transcriber = None

    @property
    def transcriber(self):
        if self._transcriber is None and self._transcriber_cfg is not None:
            from ..audio.transcribe import get_transcriber

            cfg = dict(self._transcriber_cfg)
            if self.device and "device" not in cfg:
                cfg["device"] = self.device
            self._transcriber = get_transcriber(**cfg)
        return self._transcriber
