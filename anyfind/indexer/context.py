"""What extractors may need beyond the bytes: models loaded once, on first use."""

from __future__ import annotations

from typing import Any


class ExtractContext:
    """Lazily built transcriber (audio) and tagger (images) for one index's settings."""

    def __init__(self, transcriber: dict[str, Any] | None, tagger: bool,
                 device: str | None = None, max_image_pixels: int = 100_000_000):
        self._transcriber_cfg = transcriber
        self._tagger_on = tagger
        self.device = device
        self.max_image_pixels = max_image_pixels
        self._transcriber = None
        self._tagger = None

    @property
    def transcriber(self):
        if self._transcriber is None and self._transcriber_cfg is not None:
            from ..audio.transcribe import Transcriber

            cfg = dict(self._transcriber_cfg)
            if self.device and "device" not in cfg:
                cfg["device"] = self.device
            self._transcriber = Transcriber(**cfg)
        return self._transcriber

    @property
    def tagger(self):
        if self._tagger is None and self._tagger_on:
            from ..encoders.tagger import ImageTagger

            self._tagger = ImageTagger(device=self.device)
        return self._tagger
