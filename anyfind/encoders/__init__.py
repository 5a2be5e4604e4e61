"""Encoders by name. Built-ins register by dotted path, so nothing heavy is imported here."""

from __future__ import annotations

import threading

from ..registry import Registry
from .base import Encoder, l2_normalize

encoders: Registry[type[Encoder]] = Registry("encoder", "anyfind.encoders")
encoders.register("sentence-transformers", "anyfind.encoders.text:SentenceTransformerEncoder")
encoders.register("open-clip", "anyfind.encoders.clip:OpenClipEncoder")

__all__ = ["Encoder", "encoders", "get_encoder", "l2_normalize"]

_loaded: dict[tuple, Encoder] = {}
_loaded_lock = threading.Lock()


def get_encoder(kind: str, model: str | None, device: str | None = None, **options) -> Encoder:
    """A shared encoder instance per (kind, model, device, options): models load once per
    process, however many indexes or requests use them."""
    key = (kind, model, device, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _loaded_lock:  # the prepare workers and the main thread may ask at once
        enc = _loaded.get(key)
        if enc is None:
            enc = encoders.get(kind)(model, device=device, **options)
            _loaded[key] = enc
        return enc
