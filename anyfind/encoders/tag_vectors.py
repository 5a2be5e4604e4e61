"""A text space's view of an image: the probability-weighted mean of its tag names'
embeddings (so "espresso" finds a photo on a machine with no CLIP weights)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


class TagVectors:
    """Tag-name embeddings cached per encoder (a few hundred ImageNet labels at most)."""

    def __init__(self) -> None:
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    def vector(self, encoder: Any, tags: list[dict]) -> np.ndarray | None:
        """tags: [{"label", "prob"}]; None when there are none."""
        if not tags:
            return None
        with self._lock:
            cache = self._cache.setdefault(id(encoder), {})
            missing = [t["label"] for t in tags if t["label"] not in cache]
        if missing:
            vectors = encoder.encode_documents(missing)
            with self._lock:
                cache.update(zip(missing, vectors, strict=True))
        vec = sum(t["prob"] * cache[t["label"]] for t in tags)
        norm = float(np.linalg.norm(vec))
        return (vec / norm).astype(np.float32) if norm > 0 else None

    def of_image(self, tagger: Any, encoder: Any, image: Any) -> np.ndarray | None:
        """Tag one image and return its tag vector for `encoder` (query images)."""
        if tagger is None:
            return None
        tags = tagger.tag([image])[0]
        return self.vector(encoder, [{"label": lab, "prob": p} for lab, p in tags])
