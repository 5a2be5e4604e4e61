"""Raw embeddings for library users: the same encoders an index uses, without an index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .config import DEFAULT_TEXT_MODEL


class Embedder:
    """`Embedder().embed_texts(["a", "b"])` -> (2, dim) float32, L2-normalised rows."""

    def __init__(self, text_model: str | None = None, *, clip_model: str | None = None,
                 clip_weights: str | None = None, whisper_model: str | None = None,
                 device: str | None = None):
        self.text_model = text_model or DEFAULT_TEXT_MODEL
        self.clip_model = clip_model
        self.clip_weights = clip_weights
        self.whisper_model = whisper_model
        self.device = device
        self._text = self._clip = self._whisper = None

    @property
    def text_encoder(self):
        if self._text is None:
            from .encoders.text import SentenceTransformerEncoder

            self._text = SentenceTransformerEncoder(self.text_model, device=self.device)
        return self._text

    @property
    def clip_encoder(self):
        if self._clip is None:
            from .encoders.clip import OpenClipEncoder

            kwargs: dict[str, Any] = {"device": self.device}
            if self.clip_weights:
                kwargs["weights"] = self.clip_weights
            self._clip = OpenClipEncoder(self.clip_model or "ViT-B-32", **kwargs)
        return self._clip

    def embed_texts(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        enc = self.text_encoder
        return enc.encode_query(texts) if query else enc.encode_documents(texts)

    def embed_images(self, images: Sequence[Any]) -> np.ndarray:
        """Paths or PIL images -> CLIP image vectors."""
        return self.clip_encoder.encode_documents(list(images), "image")

    def transcribe(self, path: str):
        """Whisper transcription: a Transcript with timed segments, language, duration."""
        if self._whisper is None:
            from .audio.transcribe import Transcriber

            self._whisper = Transcriber(self.whisper_model, device=self.device or "auto")
        return self._whisper.transcribe(path)
