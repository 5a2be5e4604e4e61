"""A text space's view of an image: the probability-weighted mean of its tags'
embeddings (so "espresso" finds a photo on a machine with no CLIP weights).

A tag is embedded as its name and its dictionary entry, equally (encoders/tagger.py
`describe_label`): "yawl: a ship's small boat" is near "ship" where "yawl" is not, and
the name keeps the tag's own word as strong as the entry's other words (an entry alone
drew screenshots' tags, "web site: a computer connected to the internet...", nearer to
queries about nothing they show). docs/SEARCH_QUALITY.md, run 14: P@10 of the ten class
names on 400 CIFAR-10 photos 0.44 -> 0.54, and the floor hides no photo `--all` shows."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


class TagVectors:
    """Tag embeddings cached per encoder (a few hundred ImageNet labels at most)."""

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
            from .tagger import describe_label  # timm's table, read on the first tag

            # one batch: the names, then their entries; each tag the mean of its two unit
            # vectors, re-normalised
            both = np.asarray(encoder.encode_documents(
                missing + [describe_label(m) for m in missing]), dtype=np.float32)
            summed = both[:len(missing)] + both[len(missing):]
            vectors = summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
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
